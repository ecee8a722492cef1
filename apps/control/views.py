"""Control from the web pages: thin views over apps/control/actions.py.

Every view needs a login and `rules.may_control` (checked again inside each action);
a POST answers with a redirect back and a message saying what was done or refused.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from apps.jobs.catalog import Job, get_job

from . import actions, broker, status
from .models import Via
from .rules import (
    Actor,
    BrokerUnreachable,
    ControlDenied,
    ControlError,
    may_control,
    whole_number,
)

WORKER_ACTIONS = ("grow", "shrink", "autoscale", "shutdown")


def actor(request: HttpRequest) -> Actor:
    if not may_control(request.user):
        raise PermissionDenied
    return Actor(Via.WEB, request.user)


def back(request: HttpRequest, default: str = "/") -> HttpResponse:
    target = request.POST.get("next") or request.GET.get("next") or default
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = default
    return redirect(target)


def attempt(request: HttpRequest, action, *args, done: str) -> bool:
    """Run one action; tell the user what happened (the refusal names the field)."""
    try:
        row = action(actor(request), *args)
    except ControlDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except ControlError as exc:
        label = f"{exc.field}: " if exc.field else ""
        messages.error(request, f"{label}{exc}")
        return False
    messages.success(request, done)
    if getattr(row, "told_workers", None) is False:
        messages.warning(request, f"Stored, but {actions.NOT_TOLD}.")
    return True


@require_POST
@login_required
def pause(request: HttpRequest, queue: str) -> HttpResponse:
    attempt(request, actions.pause_queue, queue,
            done=f"Queue {queue} paused: workers take nothing new from it.")  # fmt: skip
    return back(request)


@require_POST
@login_required
def resume(request: HttpRequest, queue: str) -> HttpResponse:
    attempt(request, actions.resume_queue, queue, done=f"Queue {queue} resumed.")
    return back(request)


@require_http_methods(["GET", "POST"])
@login_required
def purge(request: HttpRequest, queue: str) -> HttpResponse:
    """GET: the confirmation, with how many messages would be dropped. POST: purge."""
    who = actor(request)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            purged = actions.purge_queue(who, queue)
        except ControlError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Queue {queue} purged: {purged.dropped} messages "
                             f"dropped, {purged.cancelled} runs cancelled.")  # fmt: skip
        return back(request)
    try:
        queue = actions.known_queue(queue)
        waiting = broker.waiting(queue)
    except BrokerUnreachable as exc:
        messages.error(request, str(exc))
        return back(request)
    except ControlError as exc:
        raise Http404(str(exc)) from None
    context = {"queue": queue, "waiting": waiting, "next": request.GET.get("next", "/")}
    return render(request, "control/purge_confirm.html", context)


@require_http_methods(["GET"])
@login_required
def worker_page(request: HttpRequest, worker: str) -> HttpResponse:
    actor(request)
    try:
        detail = status.worker_detail(worker)
    except BrokerUnreachable as exc:
        messages.error(request, str(exc))
        return back(request)
    if detail is None:
        raise Http404("No such worker is answering.")
    return render(
        request, "control/worker.html", {"worker": detail, "paused": actions.paused_queues()}
    )


@require_POST
@login_required
def worker_action(request: HttpRequest, worker: str, action: str) -> HttpResponse:
    if action not in WORKER_ACTIONS:
        raise Http404(action)
    default = reverse("control:worker", args=[worker]) if action != "shutdown" else "/"
    wanted = {"autoscale": ("max", "min"), "shutdown": ()}.get(action, ("n",))
    numbers = read_numbers(request, wanted)
    if numbers is None:
        return back(request, default)
    calls = {
        "grow": (actions.grow_pool, (worker, numbers.get("n")), f"{worker}: pool grown."),
        "shrink": (actions.shrink_pool, (worker, numbers.get("n")), f"{worker}: pool shrunk."),
        "autoscale": (actions.autoscale, (worker, numbers.get("max"), numbers.get("min")),
                      f"{worker}: autoscale set."),
        "shutdown": (actions.shutdown_worker, (worker,),
                     f"{worker}: warm shutdown sent; running jobs finish first."),
    }  # fmt: skip
    function, args, done = calls[action]
    attempt(request, function, *args, done=done)
    return back(request, default)


def read_numbers(request: HttpRequest, names: tuple[str, ...]) -> dict | None:
    """The form's whole numbers (n defaults to 1); None, with a message, if one is not."""
    numbers = {}
    for name in names:
        try:
            numbers[name] = whole_number(request.POST.get(name, "1" if name == "n" else ""), name)
        except ControlError as exc:
            messages.error(request, f"{name}: {exc}")
            return None
    return numbers


@require_POST
@login_required
def rate_limit(request: HttpRequest, name: str) -> HttpResponse:
    job = get_job(name)
    if job is None:
        raise Http404("No such job.")
    rate = request.POST.get("rate", "").strip()
    if request.POST.get("clear"):
        rate = ""
    done = f"Rate limit of {job.title}: {rate} per worker." if rate else "Rate limit cleared."
    attempt(request, actions.set_rate_limit, job.name, rate, done=done)
    return back(request, reverse("jobs:job", args=[job.name]))


@require_http_methods(["GET"])
@login_required
def rate_total(request: HttpRequest, name: str) -> HttpResponse:
    """The job's page loads this part after itself: it waits for the workers' answers."""
    try:
        job = actions.runnable_job(Actor(Via.WEB, request.user), name)
    except ControlDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except ControlError as exc:
        raise Http404(str(exc)) from None
    summary = status.rate_summary(job)
    return render(request, "control/rate_total.html", {"summary": summary})


def rate_limit_context(user, job: Job) -> dict:
    return {
        "job": job,
        "summary": status.rate_summary(job, ask_workers=False),
        "note": status.PER_WORKER_NOTE,
        "can_control": may_control(user),
    }
