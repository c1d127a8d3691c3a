"""A server filled with demo data, and the list of the site's pages, for the accessibility
tests (tests/e2e/test_accessibility.py) and the screenshots (scripts/screenshots).

Importable without pytest: the screenshot script runs it outside the tests. A page
added to the site is one line in ``PAGES``; a page that needs a form sent first is
one line in ``FORM_PAGES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from support.distributions import make_sdist, make_wheel
from support.logins import form_login
from support.server import Server
from support.uploads import post_upload

#: The server administrator (audit log, admin pages) and a user who uploads.
ADMIN = ("root", "root-password-1")
MEMBER = ("alice", "alice-password-1")
#: The demo project, in the default index; a second one in INDEX.
PROJECT = "ministry-demo"
INDEX = "team/dev"
INDEX_PROJECT = "dev-tools"
#: A private index only the administrator reads: anonymous readers get a 401 page.
PRIVATE = "team/secret"

README = """\
# Ministry demo

A project to show what the pages look like: *emphasis*, `inline code` and a
[link to the docs](https://docs.example/ministry-demo).

## Install

```bash
pip install ministry-demo
```

## Usage

```python
from ministry_demo import stamp

print(stamp("form 27B/6", copies=3))
```

## Forms

| Form | Purpose | Copies |
|------|---------|-------:|
| 27B/6 | Request for a form | 3 |
| A38 | Permit of the permit | 1 |

> Everything in triplicate.
"""
#: (version, tags of its wheels, whether an sdist too, yanked); the last one is a pre-release.
RELEASES = (
    ("1.0", ("py3-none-any",), True, False),
    ("1.1", ("py3-none-any",), False, True),
    (
        "2.0",
        (
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
            "cp312-cp312-macosx_11_0_arm64",
            "cp312-cp312-win_amd64",
            "py3-none-any",
        ),
        True,
        False,
    ),
    ("2.1rc1", ("py3-none-any",), False, False),
)

#: The screens the pages are checked and shown at: a laptop and a phone.
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}

#: (name, path, who is signed in: None, "member" or "admin"): every page template of the
#: site, once. Error pages are pages too.
PAGES: list[tuple[str, str, str | None]] = [
    ("home", "/", None),
    ("search", "/search", None),
    ("search-results", "/search?q=demo", None),
    ("index-search", f"/{INDEX}/search?q=dev", None),
    ("indexes", "/-/indexes", None),
    ("index", f"/-/indexes/{INDEX}/", None),
    ("project", f"/project/{PROJECT}/", None),
    ("release", f"/project/{PROJECT}/2.0/", None),
    ("project-signed-in", f"/project/{PROJECT}/", "member"),
    ("packages", "/packages/", None),
    ("packages-project", f"/packages/{PROJECT}/", None),
    ("help", "/-/help", None),
    ("login", "/-/login", None),
    ("tokens", "/-/tokens", "member"),
    ("user", "/-/user", "member"),
    ("audit", "/-/audit", "admin"),
    ("error-404", "/-/no-such-page", None),
    ("error-401", f"/-/help?index={PRIVATE}", None),
    ("error-403", "/-/audit", "member"),
]

#: The administration pages, shown by scripts/screenshots. Their accessibility is checked
#: by tests/e2e/test_browser_admin.py in every state its forms leave them in.
ADMIN_PAGES: list[tuple[str, str, str | None]] = [
    ("admin", "/-/admin/", "admin"),
    ("admin-new-index", "/-/admin/indexes/new", "admin"),
    ("admin-index", f"/-/admin/indexes/{INDEX}/", "admin"),
    ("admin-groups", "/-/admin/groups", "admin"),
    ("admin-users", "/-/admin/users", "admin"),
]

#: Pages that show the answer to a form: (name, path, who, what to fill in by label, the
#: button to press). The form is filled and sent in the browser.
FORM_PAGES: list[tuple[str, str, str | None, dict[str, str], str]] = [
    ("login-failed", "/-/login", None, {"User name": "nobody", "Password": "wrong"}, "Log in"),
    ("token-created", "/-/tokens", "member", {"What it is for": "CI uploads"}, "Create token"),
]


@dataclass(frozen=True)
class Demo:
    """What ``seed`` made: the session cookie of each kind of user."""

    sessions: dict[str, str]


def seed(server: Server, directory: Path) -> Demo:
    """Users, indexes and releases for the pages to show; returns a session per user."""
    directory.mkdir(parents=True, exist_ok=True)
    for (name, password), admin in ((ADMIN, True), (MEMBER, False)):
        _cli(server, "user", "add", name, "--password-stdin", *(["--admin"] if admin else []),
             stdin=password + "\n")  # fmt: skip
    _cli(server, "index", "create", INDEX, "--uploaders", MEMBER[0], "--admins", MEMBER[0],
         "--description", "Builds of the development team, before they are promoted.")  # fmt: skip
    _cli(server, "index", "create", PRIVATE, "--private", "--readers", ADMIN[0],
         "--description", "Not for everyone.")  # fmt: skip
    with server.client() as client:
        for version, tags, sdist, _ in RELEASES:
            options = {
                "summary": "Stamps forms in triplicate",
                "requires_python": ">=3.10",
                "description": README,
                "extra_headers": [
                    ("Description-Content-Type", "text/markdown"),
                    ("Project-URL", "Documentation, https://docs.example/ministry-demo"),
                    ("Classifier", "Programming Language :: Python :: 3"),
                ],
            }
            files = [make_wheel(directory, PROJECT, version, tag=tag, **options) for tag in tags]
            if sdist:
                files.append(make_sdist(directory, PROJECT, version, **options))
            for path in files:
                answer = post_upload(client, path, auth=MEMBER)
                assert answer.status_code == 200, answer.text
        wheel = make_wheel(directory, INDEX_PROJECT, "0.3.dev1", summary="Tools of the dev team")
        answer = post_upload(client, wheel, auth=MEMBER, url=f"/{INDEX}/legacy/")
        assert answer.status_code == 200, answer.text
    for version, *_, yanked in RELEASES:
        if yanked:
            _cli(server, "yank", PROJECT, version, "--reason", "Stamped in duplicate only")
    return Demo(sessions={"member": _session(server, MEMBER), "admin": _session(server, ADMIN)})


def _cli(server: Server, *arguments: str, stdin: str | None = None) -> None:
    done = server.cli(*arguments, stdin=stdin)
    assert done.returncode == 0, done.stdout + done.stderr


def _session(server: Server, user: tuple[str, str]) -> str:
    """A browser session of ``user``, started with the login form."""
    with server.client() as client:
        answer = form_login(client, *user)
        assert answer.status_code == 303, answer.text
        return client.cookies["ministry_session"]
