"""What control adds to the job's page (apps.jobs.page_parts "job"): its rate limit."""

from django.template.loader import render_to_string

from . import views


def rate_limit_form(context) -> str:
    request, job = context["request"], context["job"]
    return render_to_string(
        "control/rate_limit_form.html",
        {**views.rate_limit_context(request.user, job), "csrf_token": context.get("csrf_token")},
    )
