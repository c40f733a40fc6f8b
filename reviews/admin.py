from django.contrib import admin

from reviews.models import Membership, PackagePattern, Team


class PackagePatternInline(admin.TabularInline[PackagePattern, Team]):
    model = PackagePattern
    extra = 1


class MembershipInline(admin.TabularInline[Membership, Team]):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    inlines = [PackagePatternInline, MembershipInline]
