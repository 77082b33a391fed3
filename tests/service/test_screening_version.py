"""The version deciding a screening, found in one statement: the number asked for, else the latest published."""

from __future__ import annotations

import dataclasses

import pytest

import rules
from service import screenings, versions
from service.errors import InvalidInput, NotFound
from service.infra.models import db


def _version_of(screening_request, **changes) -> int:
    return screenings.version_for(screenings.parse_request(screening_request(**changes))).number


def test_the_latest_published_version_decides_unless_a_number_is_asked(app, screening_request):
    with app.app_context():
        draft = versions.amend("NCT07193667")
        db.session.commit()
        assert _version_of(screening_request) == 1  # a draft never decides by default
        with pytest.raises(InvalidInput, match="version 2 is draft"):
            _version_of(screening_request, version=2)
        versions.publish(draft, versions.SYSTEM_SIGNATURE)
        later = versions.amend("NCT07193667")  # version 3, a draft again
        db.session.commit()
        assert (later.number, _version_of(screening_request)) == (3, 2)
        assert _version_of(screening_request, version=1) == 1


def test_a_version_that_cannot_decide_is_named_as_before(app, screening_request):
    with app.app_context():
        with pytest.raises(NotFound, match="has no version 9 \\(versions: 1\\)"):
            _version_of(screening_request, version=9)
        with pytest.raises(NotFound, match="no protocol 'NCT0'"):
            _version_of(screening_request, protocol="NCT0")
        unpublished = dataclasses.replace(rules.seed_protocol(), protocol="NCT-DRAFT-ONLY")
        versions.import_definition(unpublished, created_by="someone")
        db.session.commit()
        with pytest.raises(InvalidInput, match="NCT-DRAFT-ONLY has no published version yet"):
            _version_of(screening_request, protocol="NCT-DRAFT-ONLY")
