import gc
import os

from django.core.wsgi import get_wsgi_application

from project.checks import refuse_to_serve_with_the_development_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_wsgi_application()
refuse_to_serve_with_the_development_key()

# What Django loaded at start-up (about 90,000 objects: apps, models, admin) lives as
# long as the process. Frozen, the collector's full passes, which come every few dozen
# requests on the results admin, no longer walk it: measured, those passes paused one
# request in ~40 for 90-160 ms; with the freeze, none (docs/performance.md).
gc.freeze()
