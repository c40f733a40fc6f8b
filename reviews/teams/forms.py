from django import forms
from django.contrib.auth.models import User

from reviews.models import Role
from reviews.teams.access import is_valid_pattern


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
