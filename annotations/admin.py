"""Site admins manage datasets, their schema and memberships here."""

from django.contrib import admin

from annotations.models import Dataset, DatasetMembership, Feature, LabelClass


class FeatureInline(admin.TabularInline):
    model = Feature
    extra = 0


class LabelClassInline(admin.TabularInline):
    model = LabelClass
    extra = 0


class MembershipInline(admin.TabularInline):
    model = DatasetMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "guideline_version", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [FeatureInline, LabelClassInline, MembershipInline]


@admin.register(DatasetMembership)
class DatasetMembershipAdmin(admin.ModelAdmin):
    list_display = ["dataset", "user", "added_at"]
    list_filter = ["dataset"]
    autocomplete_fields = ["user"]
