from django.urls import path

from governance import account_views

urlpatterns = [
    path("password/", account_views.account_password, name="account_password"),
    path("tokens/", account_views.account_tokens, name="account_tokens"),
    path("tokens/new/", account_views.account_token_create, name="account_token_create"),
    path("tokens/<int:pk>/revoke/", account_views.account_token_revoke, name="account_token_revoke"),
]
