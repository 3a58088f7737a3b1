"""The trial's URLs plus `/bench/bare`: a view with no database query and no template, through every middleware of
the trial's settings. Its throughput under the load benchmark's users is the ceiling of the Gunicorn configuration."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from trial.urls import urlpatterns as trial_urlpatterns


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare", bare, name="bench_bare"), *trial_urlpatterns]
