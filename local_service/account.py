"""The account moto plays: its region, its id, and the operator's credentials."""

from __future__ import annotations

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
# The operator's credentials (what `make deploy` would run with): moto accepts them; they must
# never be real ones.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
