from django import template

from .. import page_parts as parts

register = template.Library()


@register.simple_tag(takes_context=True)
def page_parts(context, place: str):
    """Whatever other apps added to this place of the page (apps/jobs/page_parts.py)."""
    return parts.render(place, context)
