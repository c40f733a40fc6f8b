from django import forms
from django.contrib.auth.models import User

from reviews.models import Role
from reviews.teams.access import is_valid_pattern
from reviews.teams.policy import MAX_REQUIRED_APPROVALS


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.TypedChoiceField(choices=Role.choices, coerce=int)

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"There is no active portal user named {username!r}.")
        return user


class PatternForm(forms.Form):
    pattern = forms.CharField(max_length=214)
    # Set by the second step, once staff have seen which other teams' packages it matches.
    confirm_overlap = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_pattern(self) -> str:
        pattern: str = self.cleaned_data["pattern"].strip().lower()
        if not is_valid_pattern(pattern):
            raise forms.ValidationError(
                "Use a package name, or a name with * wildcards such as @acme/* or @acme/ui-*."
            )
        return pattern


class PolicyForm(forms.Form):
    required_approvals = forms.IntegerField(
        min_value=0,
        max_value=MAX_REQUIRED_APPROVALS,
        label="Approving reviews before the final approve",
        help_text="From distinct people with the reviewer role or above; 0 lets one approver "
        "decide alone.",
    )
    no_self_approval = forms.BooleanField(
        required=False, label="The person who staged a version may not approve it"
    )
    acknowledge_findings = forms.BooleanField(
        required=False, label="New critical or high findings must be ticked as read to approve"
    )


NPM_NAME = r"^(?:[A-Za-z0-9][A-Za-z0-9._~-]*)?$"


class StagingNpmUserForm(forms.Form):
    staging_npm_user = forms.RegexField(
        regex=NPM_NAME,
        max_length=214,
        required=False,
        label="npm user you stage with from CI",
        error_messages={"invalid": "An npm user name: lowercase letters, digits, - . _ ~."},
    )

    def clean_staging_npm_user(self) -> str:
        return str(self.cleaned_data["staging_npm_user"]).strip().lower()
