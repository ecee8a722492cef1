# One image for every role (web, worker, beat, flower, migrate); docker-compose.yml picks
# the role with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 1000 switchyard
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

# Only the code: the checkout's .env, .venv, var/ and .git stay out of the image.
COPY --chown=switchyard:switchyard manage.py ./
COPY --chown=switchyard:switchyard project/ project/
COPY --chown=switchyard:switchyard apps/ apps/
COPY --chown=switchyard:switchyard templates/ templates/
COPY --chown=switchyard:switchyard static/ static/
RUN mkdir -p var && chown switchyard:switchyard var

USER switchyard
# A throwaway key for this RUN only; the real one comes from .env at run time.
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput

EXPOSE 8000
CMD ["gunicorn", "project.wsgi:application", "--bind", "0.0.0.0:8000"]
