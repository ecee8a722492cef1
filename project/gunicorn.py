"""gunicorn's settings for the web service: `gunicorn -c python:project.gunicorn ...`
(docker-compose.yml, and the benchmarks that serve the site as it does).

Threaded workers (`gthread`) instead of gunicorn's default, one synchronous process: a
sync worker serves one request at a time and closes every connection after answering,
so each request from a browser or an API client pays a new TCP connection, and a slow
client holds the only worker. A gthread worker keeps connections alive between
requests and serves `threads` of them at once; Django gives each thread its own
database connection. Processes: `WEB_CONCURRENCY` (gunicorn reads it; default 1), about
one per core the web service may use.
"""

worker_class = "gthread"
threads = 4
# Seconds an idle kept-alive connection stays open (gunicorn's default is 2; a person
# clicking through pages or a script polling a run comes back within a few seconds).
keepalive = 5
