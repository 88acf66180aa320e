"""The commented workspace file ``kizuna init`` writes: documentation an admin edits in place."""

from __future__ import annotations

TEMPLATE = """\
# Kizuna workspace — one file configures one company. Secrets never go here: fields ending
# in `_env` name an environment variable that holds the secret.
version: 1

company:
  name: {company}
  # Your own mail domains: mail between these addresses is internal, and people at these
  # domains are your staff (owners of customers and deals), not customers.
  domains: [{domains}]
  time_zone: Asia/Tokyo      # IANA name; schedules and reports use it
  phone_region: JP           # phone numbers without a country code are read in this region

warehouse:
  # SQLite file next to this one by default. For PostgreSQL:
  #   url: postgresql+psycopg://user@host/kizuna   (or set KIZUNA_WAREHOUSE_URL)
  url: sqlite:///kizuna.db

sources:
  # A customer/deal export from Excel or another CRM (CSV in UTF-8, UTF-8 with BOM or
  # Shift_JIS as Excel writes it in Japan, or .xlsx). Common Japanese and English headers
  # (会社名, 氏名, フリガナ, メールアドレス, 電話番号, 部署, 役職, 案件名, フェーズ, 金額,
  # 受注予定日, Company, Email, Phone …) are recognised; map others under `columns:`.
  customers:
    type: spreadsheet
    path: data/customers.csv
    key: 顧客ID                 # the column that identifies a row; rows without it are quarantined
    # columns:                  # header → unified field, for headers Kizuna does not know
    #   取引先担当者: person.full_name
    on_missing: mark_deleted     # a row gone from the file: mark_deleted | keep

  # Mail exported or synced to disk: an mbox file, a Maildir, or a folder of .eml files.
  mail:
    type: mail
    path: data/mail
    # format: auto              # auto | mbox | maildir | eml (eml: every file is one message)
    # headers_only: false       # true: keep no snippet (subject, people and thread only)
    # exclude_internal: false   # true: skip mail among our own domains only

  # Calendar files (.ics). Recurring meetings are expanded within the window below.
  calendar:
    type: ics
    path: data/calendars
    expand_past_days: 180
    expand_future_days: 90

  # Google Workspace: mail (gmail), calendars (gcal) and contacts (gpeople), one stream per
  # account. Credentials are secret names: a service account key with domain-wide delegation,
  # or per-account OAuth tokens under `oauth_token_env:`.
  # gmail:
  #   type: gmail
  #   accounts: [sato@example.co.jp, suzuki@example.co.jp]
  #   service_account_key_env: GOOGLE_SA_KEY
  #   privacy:
  #     capture: external       # all | external | known_customers
  #     headers_only: false     # true: headers only, bodies never leave Google

  # Microsoft 365 mailboxes and calendars through Graph (an app with client credentials).
  # m365:
  #   type: m365
  #   tenant_id: 00000000-0000-0000-0000-000000000000
  #   client_id: 00000000-0000-0000-0000-000000000000
  #   client_secret_env: M365_CLIENT_SECRET
  #   mailboxes: [sato@example.co.jp]
  #   folders: [inbox, sentitems]
"""


def render_workspace(company: str, domains: list[str]) -> str:
    return TEMPLATE.format(company=company, domains=", ".join(domains))
