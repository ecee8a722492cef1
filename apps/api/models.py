import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

# secrets.token_urlsafe(32): 43 characters of [A-Za-z0-9_-], 256 random bits.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
PREFIX_LENGTH = 8
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(token: str) -> str:
    """SHA-256 of the token, hex.

    A slow password hash (PBKDF2) defends guessable passwords; these tokens are 256
    random bits, so a plain SHA-256 is as safe and costs microseconds per request
    instead of ~100 ms.
    """
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def revoke(self) -> int:
        from apps.audit.recording import record_updates

        now, active = timezone.now(), self.active()
        with transaction.atomic():
            record_updates(active, {"revoked_at": [None, now]})  # .update(): no signals
            return active.update(revoked_at=now)


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'nightly export'.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    hashed_secret = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def new_secret(self) -> str:
        """Give this token a fresh secret; return it in plain (the only time it exists)."""
        token = secrets.token_urlsafe(32)
        self.prefix = token[:PREFIX_LENGTH]
        self.hashed_secret = digest(token)
        return token

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        api_token = cls(user=user, name=name)
        token = api_token.new_secret()
        api_token.save()
        return api_token, token

    @classmethod
    def user_for(cls, token: str):
        """The active user a live token belongs to, or None."""
        if not TOKEN_PATTERN.fullmatch(token):
            return None
        hashed = digest(token)
        candidates = cls.objects.active().filter(prefix=token[:PREFIX_LENGTH])
        for api_token in candidates.select_related("user"):
            if hmac.compare_digest(api_token.hashed_secret, hashed):
                api_token.touch()
                return api_token.user if api_token.user.is_active else None
        return None

    def touch(self) -> None:
        """Record the use, at most once per LAST_USED_RESOLUTION. The row was just read:
        while its stamp is recent, no statement at all (one write fewer per API call);
        the conditional UPDATE keeps concurrent requests from writing twice."""
        now = timezone.now()
        if self.last_used_at is not None and self.last_used_at >= now - LAST_USED_RESOLUTION:
            return
        stale = models.Q(last_used_at__isnull=True) | models.Q(
            last_used_at__lt=now - LAST_USED_RESOLUTION
        )
        ApiToken.objects.filter(stale, pk=self.pk).update(last_used_at=now)
