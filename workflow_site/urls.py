from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotations.views import home
from workflow_site.health import health

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("datasets/", include("annotations.urls")),
    path("models/", include("models_app.urls")),
    path("governance/", include("governance.urls")),
    path("api/", include("workflow_site.api_urls")),
]
