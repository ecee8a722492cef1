from django.conf import settings
from django.core.management.base import BaseCommand

from apps.devstack.admin_account import ensure_admin


class Command(BaseCommand):
    help = "Create the admin account (ADMIN_USER/ADMIN_PASSWORD, or a generated one)."

    def handle(self, *args, **options) -> None:
        generated = ensure_admin(settings.ADMIN_USER, settings.ADMIN_PASSWORD)
        if generated:
            self.stdout.write(
                self.style.WARNING(f"Created superuser 'admin' with password: {generated}")
            )
            self.stdout.write("It is shown only this once; change it in the admin.")
        elif settings.ADMIN_USER:
            self.stdout.write(f"Superuser '{settings.ADMIN_USER}' is ready.")
