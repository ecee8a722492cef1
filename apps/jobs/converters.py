"""The `<id:...>` path converter: a database id, or no match (404) if it cannot be one.

`<int:...>` matches any run of digits, and a number past 64 bits reached the database:
`Export.objects.filter(run_id=10**23)` raised OverflowError (a 500). Primary-key
lookups happened to return nothing, a foreign key's did not; this converter refuses
such a number before any view runs, whatever the view looks up.
"""

from django.urls import register_converter

# Database ids are 64-bit signed integers (the API refuses larger ones the same way).
MAX_ID = 2**63 - 1


class DatabaseId:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(f"{value} is not a database id")  # the URL does not match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseId, "id")
