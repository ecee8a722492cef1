from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.devstack.admin_account import AccountRefused, ensure_admin


class Command(BaseCommand):
    help = (
        "Create the admin account: ADMIN_USER and ADMIN_PASSWORD together (a password "
        "AUTH_PASSWORD_VALIDATORS accept), or neither for an 'admin' with a generated one."
    )

    def handle(self, *args, **options) -> None:
        try:
            generated = ensure_admin(settings.ADMIN_USER, settings.ADMIN_PASSWORD)
        except AccountRefused as exc:
            raise CommandError(str(exc), returncode=2) from None
        if generated:
            self.stdout.write(
                self.style.WARNING(f"Created superuser 'admin' with password: {generated}")
            )
            self.stdout.write("It is shown only this once; change it in the admin.")
        elif settings.ADMIN_USER:
            self.stdout.write(f"Superuser '{settings.ADMIN_USER}' is ready.")
