from django.urls import path, re_path, register_converter
from django.urls.converters import StringConverter

from reviews.api import views as api_token_views
from reviews.audit import views as audit_views
from reviews.decide import batch_views, token_views
from reviews.decide import views as decision_views
from reviews.notify import views as notification_views
from reviews.review import discussion_views
from reviews.review import pages as views
from reviews.review import views as review_views
from reviews.teams import views as team_views


class FilePathConverter(StringConverter):
    """A path inside a package: any characters, slashes and newlines too (names are hostile)."""

    regex = r"[\s\S]+"


register_converter(FilePathConverter, "filepath")

app_name = "reviews"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("stages/<uuid:stage_id>/", views.stage_detail, name="stage"),
    path("stages/<uuid:stage_id>/files/<filepath:path>", views.stage_detail, name="stage-file"),
    path(
        "stages/<uuid:stage_id>/context/<filepath:path>",
        review_views.file_context,
        name="stage-file-context",
    ),
    path("stages/<uuid:stage_id>/tarball/", review_views.download_tarball, name="stage-tarball"),
    path("stages/<uuid:stage_id>/compare/", review_views.compare, name="stage-compare"),
    path("stages/<uuid:stage_id>/analyse/", review_views.analyse, name="stage-analyse"),
    path("stages/<uuid:stage_id>/recheck/", review_views.recheck_tarball, name="stage-recheck"),
    # Team review: verdicts, line comments and their threads, files viewed.
    path("stages/<uuid:stage_id>/all-files/", views.all_files, name="stage-all-files"),
    path("stages/<uuid:stage_id>/search/", views.search_diffs, name="stage-search"),
    path("stages/<uuid:stage_id>/reviews/", discussion_views.submit_review, name="stage-review"),
    path(
        "stages/<uuid:stage_id>/comments/<filepath:path>",
        discussion_views.add_comment,
        name="stage-comment",
    ),
    path(
        "stages/<uuid:stage_id>/threads/<int:thread_id>/reply/",
        discussion_views.reply,
        name="stage-thread-reply",
    ),
    path(
        "stages/<uuid:stage_id>/threads/<int:thread_id>/resolve/",
        discussion_views.resolve,
        name="stage-thread-resolve",
    ),
    path(
        "stages/<uuid:stage_id>/viewed/<filepath:path>",
        discussion_views.set_viewed,
        name="stage-file-viewed",
    ),
    path(
        "stages/<uuid:stage_id>/decision/",
        decision_views.decision_panel,
        name="stage-decision-panel",
    ),
    path(
        "stages/<uuid:stage_id>/decision/check/",
        decision_views.decision_check,
        name="stage-decision-check",
    ),
    # Batches: many stages approved (or rejected) in one sitting, in dependency order.
    path("batches/new/", batch_views.start, name="batch-start"),
    path("batches/<int:batch_id>/", batch_views.show, name="batch"),
    path("batches/<int:batch_id>/progress/", batch_views.progress, name="batch-progress"),
    path("batches/<int:batch_id>/approve/", batch_views.approve, name="batch-approve"),
    path("batches/<int:batch_id>/reject/", batch_views.reject, name="batch-reject"),
    path("stages/<uuid:stage_id>/approve/", decision_views.approve_form, name="stage-approve-form"),
    path("stages/<uuid:stage_id>/approve/confirm/", decision_views.approve, name="stage-approve"),
    path("stages/<uuid:stage_id>/reject/", decision_views.reject_form, name="stage-reject-form"),
    path("stages/<uuid:stage_id>/reject/confirm/", decision_views.reject, name="stage-reject"),
    path(
        "stages/<uuid:stage_id>/security-key/poll/",
        decision_views.security_key_poll,
        name="stage-security-key-poll",
    ),
    path(
        "stages/<uuid:stage_id>/security-key/cancel/",
        decision_views.security_key_cancel,
        name="stage-security-key-cancel",
    ),
    path("settings/", token_views.settings_page, name="settings"),
    path("settings/npm-token/", token_views.link_token, name="npm-token-link"),
    path("settings/npm-token/unlink/", token_views.unlink_token, name="npm-token-unlink"),
    path("settings/ci-npm-user/", team_views.set_staging_npm_user, name="staging-npm-user"),
    path("settings/api-tokens/", api_token_views.create_token, name="api-token-create"),
    path(
        "settings/api-tokens/<int:token_id>/revoke/",
        api_token_views.revoke_token,
        name="api-token-revoke",
    ),
    path("me/", notification_views.me, name="me"),
    path(
        "me/notifications/<slug:slug>/",
        notification_views.set_preference,
        name="notification-preference",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notification_views.unsubscribe,
        name="notifications-unsubscribe",
    ),
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
    path("teams/<slug:slug>/policy/", team_views.team_set_policy, name="team-policy"),
    path(
        "teams/<slug:slug>/notifications/",
        notification_views.team_settings,
        name="team-notifications",
    ),
    path(
        "teams/<slug:slug>/notifications/webhook-test/",
        notification_views.team_webhook_test,
        name="team-webhook-test",
    ),
    path(
        "teams/<slug:slug>/patterns/<int:pattern_id>/remove/",
        team_views.team_remove_pattern,
        name="team-remove-pattern",
    ),
]
