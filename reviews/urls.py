from django.urls import path, re_path

from reviews import audit_views, team_views, views

app_name = "reviews"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("stages/<uuid:stage_id>/", views.stage_detail, name="stage"),
    path("me/", team_views.me, name="me"),
    path("audit/", audit_views.audit_log, name="audit"),
    re_path(r"^audit/export\.(?P<fmt>csv|json)$", audit_views.audit_export, name="audit-export"),
    path("teams/", team_views.team_list, name="teams"),
    path("teams/<slug:slug>/", team_views.team_detail, name="team"),
    path("teams/<slug:slug>/members/", team_views.team_set_member, name="team-set-member"),
    path(
        "teams/<slug:slug>/members/<int:user_id>/remove/",
        team_views.team_remove_member,
        name="team-remove-member",
    ),
    path("teams/<slug:slug>/patterns/", team_views.team_add_pattern, name="team-add-pattern"),
    path(
        "teams/<slug:slug>/patterns/<int:pattern_id>/remove/",
        team_views.team_remove_pattern,
        name="team-remove-pattern",
    ),
]
