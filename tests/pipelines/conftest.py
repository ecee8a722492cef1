from tests.browser_fixtures import *  # noqa: F403
