"""The team review's forms: a review, a line comment, a reply."""

from __future__ import annotations

from django import forms

from reviews.models import LineComment, Review
from reviews.review.discussion import MAX_TEXT


def text_field(label: str, *, required: bool = True, rows: int = 3) -> forms.CharField:
    return forms.CharField(
        required=required,
        max_length=MAX_TEXT,
        strip=True,
        label=label,
        widget=forms.Textarea(attrs={"rows": rows}),
    )


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=Review.Verdict.choices, widget=forms.RadioSelect, initial=Review.Verdict.COMMENT
    )
    text = text_field("Your review", required=False, rows=4)


class CommentForm(forms.Form):
    side = forms.ChoiceField(choices=LineComment.Side.choices)
    line = forms.IntegerField(min_value=1, max_value=10_000_000)
    text = text_field("Comment")


class ReplyForm(forms.Form):
    text = text_field("Reply", rows=2)
