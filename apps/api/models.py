import functools
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connections, models, router, transaction
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

    def touch(self, now) -> int:
        """Record a use, at most once per LAST_USED_RESOLUTION (not a write per API
        call); the condition keeps concurrent requests from writing twice."""
        stale = models.Q(last_used_at__isnull=True) | models.Q(
            last_used_at__lt=now - LAST_USED_RESOLUTION
        )
        return self.filter(stale).update(last_used_at=now)

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
        """The active user a live token belongs to, or None.

        Every API call asks, so this is one SQL statement written once per process
        (building the same ORM query cost about 0.4 ms of CPU a call, most of an API
        call's authentication). The user comes with the fields a request uses (its
        permissions, its name); any other is loaded when first read, as with .only()."""
        if not TOKEN_PATTERN.fullmatch(token):
            return None
        hashed = digest(token)
        now = timezone.now()
        connection = connections[router.db_for_read(cls)]
        recent = connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION)
        with connection.cursor() as cursor:
            cursor.execute(_lookup_text(connection.alias), [recent, token[:PREFIX_LENGTH]])
            candidates = cursor.fetchall()
        for pk, hashed_secret, used_recently, *user_values in candidates:
            if hmac.compare_digest(hashed_secret, hashed):
                if not used_recently:
                    cls.objects.filter(pk=pk).touch(now)
                user = _user_from(connection.alias, user_values)
                return user if user.is_active else None
        return None


# The fields of the user a token request carries (permissions.ModelBackend and
# dispatch read these); the rest are deferred.
USER_FIELDS = ("id", "username", "is_active", "is_superuser", "is_staff")


@functools.cache
def _user_fields() -> tuple:
    """USER_FIELDS as the user model's fields, in its own order (from_db's)."""
    user_model = ApiToken._meta.get_field("user").related_model
    return tuple(f for f in user_model._meta.concrete_fields if f.attname in USER_FIELDS)


@functools.cache
def _lookup_text(alias: str) -> str:
    """The live tokens of a prefix, each with its secret's hash, whether its use was
    recorded recently (param 1), and its user's USER_FIELDS (param 2: the prefix).
    Built once: only quoted names from the models' meta in it."""
    quote = connections[alias].ops.quote_name
    user = ApiToken._meta.get_field("user")
    token_table = quote(ApiToken._meta.db_table)
    user_table = quote(user.related_model._meta.db_table)
    user_columns = ", ".join(f"u.{quote(f.column)}" for f in _user_fields())
    return (
        f"SELECT t.id, t.hashed_secret, "  # noqa: S608
        f"(t.last_used_at IS NOT NULL AND t.last_used_at >= %s), {user_columns} "
        f"FROM {token_table} t JOIN {user_table} u "
        f"ON u.{quote(user.target_field.column)} = t.{quote(user.column)} "
        f"WHERE t.prefix = %s AND t.revoked_at IS NULL"
    )


def _user_from(alias: str, values: list):
    fields = _user_fields()
    values = [bool(v) if isinstance(f, models.BooleanField) else v
              for f, v in zip(fields, values, strict=True)]  # fmt: skip
    user_model = ApiToken._meta.get_field("user").related_model
    return user_model.from_db(alias, [f.attname for f in fields], values)
