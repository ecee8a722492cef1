import os

from django.core.asgi import get_asgi_application

from project.checks import refuse_to_serve_with_the_development_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_asgi_application()
refuse_to_serve_with_the_development_key()
