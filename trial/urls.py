from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from trial import errors, views
from trial.forms import LoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("monitoring.urls")),
    path("settings/", views.trial_settings, name="trial_settings"),
    path("settings/sites/", views.recruitment_states, name="recruitment_states"),
    path("settings/sites/<str:site_code>/", views.site_recruitment_state, name="site_recruitment_state"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/tokens/", include("api.token_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("families/", include("families.urls")),
    path("", include("randomization.urls")),
    path("", include("visits.urls")),
    path("", include("notifications.urls")),
    path("followups/", include("followups.urls")),
    path("reports/", include("reports.urls")),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]

# A database connection failure is a 503 that says nothing was saved (trial/errors.py); anything else, the 500 page.
handler500 = errors.server_error
