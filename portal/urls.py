from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal.health import healthz
from portal.metrics import metrics
from reviews.api.endpoints import urlpatterns as api_urlpatterns

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_urlpatterns())),
    path("", include("reviews.urls")),
]

# 400, 403 and 404 use Django's handlers with templates/400.html, 403.html and 404.html.
handler500 = "portal.errors.server_error"
