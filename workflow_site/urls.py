from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from annotations.views import home
from workflow_site.health import health

# The admin says whose it is (issue 6, defect 16): Loupe, not "Django administration".
admin.site.site_header = "Loupe administration"
admin.site.site_title = "Loupe site admin"
admin.site.index_title = "Users, roles and dataset memberships"

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health/", health, name="health"),
    # One's own password and API tokens (governance/credentials.py). The admin's own
    # password page goes there too, so every self-service change is audited the same way.
    path("account/", include("governance.account_urls")),
    path("admin/password_change/", RedirectView.as_view(pattern_name="account_password")),
    path("admin/", admin.site.urls),
    path("datasets/", include("annotations.urls")),
    path("models/", include("models_app.urls")),
    path("governance/", include("governance.urls")),
    path("api/", include("workflow_site.api_urls")),
]
