"""The commented workspace file ``kizuna init`` writes: documentation an admin edits in place."""

from __future__ import annotations

from pathlib import Path

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
  # A customer/deal export from Excel or another CRM (CSV or tab-separated text, or .xlsx).
  # Common Japanese and English headers (会社名, 氏名, フリガナ, メールアドレス, 電話番号, 部署,
  # 役職, 案件名, フェーズ, 金額, 受注予定日, 担当者 = your rep, Company, Email …) are
  # recognised; `kizuna sources discover customers` shows where each header goes.
  # A source whose file or folder does not exist yet starts disabled: set `enabled: true`
  # once it is there.
  customers:
    type: spreadsheet
    enabled: {customers_on}
    path: data/customers.csv
    key: 顧客ID                 # the column that identifies a row; rows without it are quarantined
    # encoding: auto            # auto | utf-8 | cp932 (Shift_JIS) | euc-jp | utf-16 — set it
    #                           # when the headers come out garbled
    # columns:                  # header → unified field, for headers Kizuna does not know
    #   取引先担当者: person.full_name
    on_missing: mark_deleted     # a row gone from the file: mark_deleted | keep

  # Mail exported or synced to disk: an mbox file, a Maildir, or a folder of .eml files.
  mail:
    type: mail
    enabled: {mail_on}
    path: data/mail
    # format: auto              # auto | mbox | maildir | eml (eml: every file is one message)
    # headers_only: false       # true: keep no snippet (subject, people and thread only)
    # exclude_internal: false   # true: skip mail among our own domains only

  # Calendar files (.ics). Recurring meetings are expanded within the window below.
  calendar:
    type: ics
    enabled: {calendar_on}
    path: data/calendars
    expand_past_days: 180       # the history horizon: older occurrences are not stored
    expand_future_days: 90      # (each series cut there is noted in `kizuna quarantine`)

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

  # CRMs, read incrementally (owners become staff by email). Salesforce: one stream per
  # object; custom fields (Foo__c) go through `field_map:`; a run stops early (and resumes
  # next run) once `quota_share` of the org's daily API requests is used.
  # sfdc:
  #   type: salesforce
  #   auth:
  #     method: oauth_refresh     # oauth_refresh | jwt | password
  #     client_id: 3MVG9...
  #     refresh_token_env: SFDC_REFRESH_TOKEN
  #   quota_share: 0.5
  #   objects:
  #     Account:
  #       field_map:
  #         corporate_number: CorporateNumber__c
  #     Contact:
  #       field_map:
  #         family_name_kana: LastNameKana__c
  #     Opportunity:
  #       api: auto               # rest | bulk2 | auto (Bulk API 2.0 past bulk_threshold rows)
  # hubspot:
  #   type: hubspot
  #   token_env: HUBSPOT_TOKEN    # a private app's access token
  #   objects:
  #     companies: {{}}
  #     contacts: {{}}
  #     deals: {{}}
  #     meetings: {{}}
  # kintone:                      # any app; say which entity it holds and map field codes
  #   type: kintone
  #   base_url: https://example.cybozu.com
  #   apps:
  #     customers:
  #       app: 12
  #       token_env: KINTONE_CUSTOMERS_TOKEN
  #       entity: organization    # organization | person | deal | activity | order
  #       field_map:
  #         name: 会社名
  #         corporate_number: 法人番号
  #         owner_email: 担当者
  #       user_domain: example.co.jp
  # More source types: Singer taps, dlt sources, and those of installed plugin packages
  # (`kizuna sources types` lists every installed type).
{plugin_sources}
# Segments: who a campaign is for, in a small filter language (never SQL). A condition is
# all: [...] / any: [...] / not: {{...}}, or one of:
#   field: person.gender | person.age | person.lifecycle_stage | person.title |
#          person.department | person.email | person.owner (staff email) | person.team |
#          person.created_at | person.attributes.<key> | org.name | org.industry | org.size |
#          org.domain | org.address | org.region (prefecture) | org.owner | org.attributes.<key>
#     with one operator: eq, ne, in, not_in, startswith, contains, between, gte, lte,
#     exists, within_days (person.age takes eq/between/gte/lte; org.region eq/in/not_in)
#   activity: last_contact | last_inbound_mail | last_outbound_mail | last_meeting
#     with within_days: N (had one) or not_within_days: N (had none);
#     activity: meetings, within_days: N, min_count: K
#   deal: open | open_in_stage (stage: 提案 or a list) | won_amount (months: 12, gte/lte: yen)
#   rfm: {{recency: [4, 5], frequency: [1, 5], monetary: [3, 5]}}   (quintiles, 5 = best)
#   segment: <another segment's name>
# `kizuna segments preview NAME` shows the count, sample members and why each matches.
segments: {{}}                    # to start: drop the {{}} and uncomment the example
  # tokyo_women_30s:
  #   all:
  #     - {{field: person.gender, eq: female}}
  #     - {{field: person.age, between: [30, 39]}}
  #     - {{field: org.region, eq: 東京都}}
  #     - {{activity: last_inbound_mail, within_days: 30}}
  #     - {{deal: open_in_stage, stage: 提案}}
  #     - {{rfm: {{recency: [4, 5]}}}}

# Campaigns: segment + channel + template steps + schedule. `kizuna campaigns run NAME
# --dry-run` shows and stores the plan (who gets what, who is skipped and why); running it
# without --dry-run sends exactly that plan. Consent is checked again for each recipient at
# send time, every mail carries List-Unsubscribe and the footer 特定電子メール法 asks for.
# Templates are Jinja2 (sandboxed): person.name / family_name / given_name / title /
# department / email / attributes, org.name / industry, owner.name, company.
campaigns: {{}}                   # to start: drop the {{}} and uncomment the example
  # autumn_seminar:
  #   segment: tokyo_women_30s
  #   channel: outbox                # a name under outbound.channels
  #   purpose: marketing_mail        # needs opt-in; sales_followup: unless opted out
  #   japanese_charset: utf-8        # or iso-2022-jp for recipients on legacy mail clients
  #   approval: required             # auto: scheduled runs plan and send without a dry run
  #   audience: all                  # new: only people who join the segment after the first dry run
  #   schedule: "0 10 * * 1"         # cron in the company time zone, for `kizuna serve`
  #   steps:
  #     - ja:
  #         subject: "{{{{ person.family_name }}}}様 秋のセミナーのご案内"
  #         text: |
  #           {{{{ person.name }}}} 様
  #           いつも{{{{ company }}}}をご利用いただきありがとうございます。
  #       en:                        # for people whose attributes.language is en
  #         subject: "Autumn seminar invitation"
  #         text: "Dear {{{{ person.name }}}}, ..."
  #     - after_days: 7              # a second step a week after the first was sent
  #       ja: {{subject: "再送: セミナーのご案内", text: "..."}}

# Reminders for sales staff, evaluated on a schedule and mailed to the owner once per
# condition; they close by themselves when the condition clears.
reminders:
  channel: outbox
  rules: {{}}                     # to start: drop the {{}} and uncomment the rules
  #   stale_deals: {{type: deal_idle, days: 14}}
  #   follow_up: {{type: meeting_no_followup, business_days: 2}}   # 土日祝 do not count
  #   closing: {{type: close_date, within_days: 7}}                 # passed or within 7 days
  #   key_accounts: {{type: key_account_quiet, days: 30, attribute: tier, values: [A]}}

# How mail goes out. Secrets stay in the environment (password_env, unsubscribe_secret_env).
outbound:
  sender: {sender}
  postal_address: ""              # 特定電子メール法: your address, printed in every footer
  unsubscribe_address: unsubscribe@{first_domain}   # replies here (with a token) opt people out
  # unsubscribe_url: https://{first_domain}/unsubscribe   # enables one-click (RFC 8058)
  channels:
    outbox: {{type: outbox, path: outbox}}   # .eml files you can open, nothing is sent
    # smtp: {{type: smtp, host: smtp.{first_domain}, port: 587, username: info@{first_domain},
    #        password_env: SMTP_PASSWORD, rate_per_minute: 60,
    #        sent_folder: {{host: imap.{first_domain}, username: info@{first_domain},
    #                      password_env: IMAP_PASSWORD, mailbox: Sent}}}}
    #   (sent_folder: after a crash, a send in doubt is looked up there by Message-ID)
    # team: {{type: slack, webhook_env: SLACK_WEBHOOK_URL}}   # reminders only (reminders.channel)
    #   (Slack cannot say whether a post went out: after a crash a reminder may be posted twice)
    # gmail: {{type: gmail, account: info@{first_domain}, service_account_key_env: GOOGLE_SA_KEY}}
    #   (or oauth_token_env: GMAIL_TOKEN; scopes gmail.send + gmail.readonly; after a crash
    #    the account's mailbox is searched for the Message-ID before anything is resent)
    # m365: {{type: m365, account: info@{first_domain}, tenant_id: …, client_id: …,
    #        client_secret_env: M365_CLIENT_SECRET}}   # Graph sendMail; app permissions
    #   Mail.Send + Mail.ReadBasic.All (after a crash Sent Items is searched by Message-ID)
  # frequency_cap: {{max: 2, days: 7}}       # per person, over every campaign
  quiet_hours: {{start: "21:00", end: "08:00"}}   # in the recipient's time zone (JST default)
  feedback: []                    # mail folders where bounces and unsubscribe mails arrive

# Identity: how records of one person from several sources become one customer.
# identity:
#   thresholds: {{merge: 0.9, review: 0.6}}   # above merge: one customer; between: review queue
#   phone_region: JP                          # default region for numbers without +81
#   id_attributes: [member_no]                # custom fields that identify a person
#   blocking:                                 # which pairs are compared (weights are learned)
#     rules: [[email], [phone], [full, org], [fam:4, giv:4], [dob, postcode]]
#   survivorship:                             # which source a golden field comes from
#     rules: [source_priority, most_recent, most_complete]
#     source_priority: {{"*": [salesforce, hubspot], title: [cards]}}

# Reports: each rep's drafted 日報 and the managers' pipeline page, under reports/.
# reports:
#   language: ja                  # ja | en
#   stale_days: 14                # open deals with no mail, meeting or stage change this long
#   stages: [リード, 提案, 見積, 交渉]   # funnel order; default: by average probability

# Web app (`kizuna web`): staff may also sign in through Google Workspace or Microsoft 365.
# Register <public_url>/sign-in/oidc/<name>/callback as the redirect URI at the provider.
# web:
#   public_url: https://kizuna.{first_domain}
#   oidc:
#     google:
#       label: Google Workspace
#       issuer: https://accounts.google.com
#       client_id: 1234-abc.apps.googleusercontent.com
#       client_secret_env: KIZUNA_GOOGLE_CLIENT_SECRET
#       allowed_domains: [{first_domain}]
"""


LOCAL_SOURCES = {
    "customers": "data/customers.csv",
    "mail": "data/mail",
    "calendar": "data/calendars",
}


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset), whatever the name holds."""
    import json

    return json.dumps(text, ensure_ascii=False)


def render_workspace(company: str, domains: list[str], root: Path | None = None) -> str:
    """The template; each local source is enabled only if its file or folder exists under
    ``root`` (the workspace's folder), so a first ``kizuna sync`` never fails on a missing one."""
    on = {
        f"{name}_on": "true" if root is not None and (root / rel).exists() else "false"
        for name, rel in LOCAL_SOURCES.items()
    }
    from flows.cli.source_types import plugin_source_templates

    return TEMPLATE.format(
        plugin_sources=plugin_source_templates(),
        company=_quoted(company),
        sender=_quoted(f"{company} <info@{domains[0] if domains else 'example.co.jp'}>"),
        domains=", ".join(domains),
        first_domain=domains[0] if domains else "example.co.jp",
        **on,
    )
