//! The detectors: every credential, key and personal number the scanner knows, each with the
//! literal anchors that find it cheaply (one Aho–Corasick pass over the message) and the shape
//! that confirms it. Ids are stable: they name findings, receipts' `pattern`, metric labels and
//! the policy's `content_scan.detectors` keys. README "Content scanning" lists them.
//!
//! Order matters once: when two detectors claim overlapping bytes, the earlier one names the
//! finding (vendor formats before the generic keyword and bearer detectors).

use super::chars::{Set, ALNUM, B64, HEX, LOWER_DIGIT, UPPER_DIGIT, URLSAFE, URLSAFE_DOT, WORD};
use super::{password_shapes, shapes};

/// What kind of data a detector finds (receipts' `data_classes_in` / `data_classes_out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataClass {
    /// API keys, tokens, passwords, connection strings.
    Credential,
    /// PEM, OpenSSH, PGP and PuTTY private keys.
    PrivateKey,
    /// Wallet secrets: seed phrases, WIF keys, extended private keys.
    CryptoKey,
    /// Personal numbers: payment cards, IBANs, US SSNs.
    Pii,
}

impl DataClass {
    pub const ALL: [DataClass; 4] = [DataClass::Credential, DataClass::PrivateKey, DataClass::CryptoKey, DataClass::Pii];

    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Credential => "credential",
            DataClass::PrivateKey => "private_key",
            DataClass::CryptoKey => "crypto_key",
            DataClass::Pii => "pii",
        }
    }

    pub fn parse(s: &str) -> Option<DataClass> {
        DataClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

pub use super::chars::Span;

/// How a detector confirms what an anchor found.
#[derive(Clone, Copy)]
pub enum Rule {
    /// The token starts with the anchor (exact case), then `min..=max` bytes of `body`, then a
    /// byte outside it; the byte before the anchor is not a letter or digit.
    Prefix { body: Set, min: u16, max: u16 },
    /// The anchor is a keyword (any case); after it, within a short name (`AWS_SECRET_ACCESS_KEY_2`)
    /// and a separator (`=`, `:`, quotes, spaces), a value of `min..=max` bytes of `value`.
    Keyed { value: Set, min: u16, max: u16 },
    /// A validator of its own: `(text, anchor_start, anchor_end)` → the secret's span.
    Check(fn(&[u8], usize, usize) -> Option<Span>),
    /// No anchor: found by the run pass (digit groups, base58 runs, word runs) and validated.
    Run,
}

/// One detector.
#[derive(Clone, Copy)]
pub struct Detector {
    pub id: &'static str,
    pub class: DataClass,
    pub anchors: &'static [&'static str],
    pub rule: Rule,
    /// Reported, not acted on, unless the policy says otherwise (test-mode keys, the generic
    /// keyword detector): what a shipped default can afford to be wrong about.
    pub mild: bool,
}

const fn prefix(id: &'static str, anchors: &'static [&'static str], body: Set, min: u16, max: u16) -> Detector {
    Detector { id, class: DataClass::Credential, anchors, rule: Rule::Prefix { body, min, max }, mild: false }
}

const fn keyed(id: &'static str, anchors: &'static [&'static str], value: Set, min: u16, max: u16) -> Detector {
    Detector { id, class: DataClass::Credential, anchors, rule: Rule::Keyed { value, min, max }, mild: false }
}

const fn check(
    id: &'static str,
    class: DataClass,
    anchors: &'static [&'static str],
    f: fn(&[u8], usize, usize) -> Option<Span>,
) -> Detector {
    Detector { id, class, anchors, rule: Rule::Check(f), mild: false }
}

const fn run(id: &'static str, class: DataClass) -> Detector {
    Detector { id, class, anchors: &[], rule: Rule::Run, mild: false }
}

const fn mild(d: Detector) -> Detector {
    Detector { mild: true, ..d }
}

const SLACK: Set = Set(super::chars::DIGIT | super::chars::LOWER | super::chars::UPPER | super::chars::DASH);
const HEX_DASH: Set = Set(super::chars::DIGIT | super::chars::HEX_LOWER | super::chars::DASH);
const HEX_UNDERSCORE: Set = Set(super::chars::DIGIT | super::chars::HEX_LOWER | super::chars::UNDERSCORE);
const AGE: Set = Set(super::chars::DIGIT | super::chars::UPPER);
const B64_URLSAFE: Set = Set(B64.0 | URLSAFE.0);
const WEBHOOK_PATH: Set = Set(ALNUM.0 | super::chars::PLUS_SLASH);

/// Id of the run-pass detectors (the engine finds them without anchors).
pub const CREDIT_CARD: &str = "credit_card_number";
pub const IBAN: &str = "iban";
pub const US_SSN: &str = "us_ssn";
pub const BITCOIN_WIF: &str = "bitcoin_wif_private_key";
pub const BIP39: &str = "bip39_seed_phrase";
/// A private key in PEM armour, or its DER body without it (found once decoded).
pub const PEM_PRIVATE_KEY: &str = "pem_private_key";
/// The second half of an AWS key pair, found near an access key id.
pub const AWS_SECRET: &str = "aws_secret_access_key";

/// Every detector, most specific first.
pub static DETECTORS: &[Detector] = &[
    // Cloud providers.
    prefix("aws_access_key_id", &["AKIA", "ASIA", "ABIA", "ACCA"], UPPER_DIGIT, 16, 16),
    keyed(
        AWS_SECRET,
        &["aws_secret_access_key", "aws-secret-access-key", "aws_secret_key", "secret_access_key", "secretaccesskey"],
        B64,
        40,
        40,
    ),
    keyed("aws_session_token", &["aws_session_token", "x-amz-security-token", "aws_security_token"], B64, 100, 2048),
    check("aws_mws_key", DataClass::Credential, &["amzn.mws."], shapes::uuid_after),
    check("gcp_service_account_key", DataClass::Credential, &["service_account"], shapes::gcp_service_account),
    prefix("google_api_key", &["AIza"], URLSAFE, 35, 35),
    prefix("google_oauth_client_secret", &["GOCSPX-"], URLSAFE, 28, 28),
    prefix("google_oauth_access_token", &["ya29."], URLSAFE, 30, 2048),
    prefix("google_oauth_refresh_token", &["1//0"], URLSAFE, 40, 512),
    check("azure_storage_account_key", DataClass::Credential, &["accountkey="], shapes::azure_account_key),
    check("azure_shared_access_key", DataClass::Credential, &["sharedaccesskey="], shapes::azure_shared_access_key),
    check("azure_sas_token", DataClass::Credential, &["sig="], shapes::azure_sas),
    check("azure_client_secret", DataClass::Credential, &["8Q~"], shapes::azure_client_secret),
    prefix("alibaba_access_key_id", &["LTAI"], ALNUM, 12, 20),
    prefix("tencent_secret_id", &["AKID"], ALNUM, 32, 32),
    prefix("digitalocean_token", &["dop_v1_", "doo_v1_", "dor_v1_"], HEX, 64, 64),
    prefix("cloudflare_origin_ca_key", &["v1.0-"], HEX_DASH, 171, 171),
    prefix("heroku_api_key", &["HRKU-"], URLSAFE, 40, 80),
    check("terraform_cloud_token", DataClass::Credential, &[".atlasv1."], shapes::terraform_token),
    prefix("vault_token", &["hvs.", "hvr."], URLSAFE, 24, 512),
    prefix("vault_batch_token", &["hvb."], URLSAFE, 24, 512),
    prefix("doppler_token", &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim."], ALNUM, 40, 44),
    prefix("pulumi_access_token", &["pul-"], HEX, 40, 40),
    prefix("planetscale_token", &["pscale_tkn_", "pscale_pw_", "pscale_oauth_"], URLSAFE_DOT, 32, 64),
    prefix("supabase_access_token", &["sbp_"], HEX, 40, 40),
    prefix("supabase_secret_key", &["sb_secret_"], URLSAFE, 20, 64),
    prefix("databricks_token", &["dapi"], HEX, 32, 34),
    prefix("fly_io_token", &["fm1r_", "fm2_"], B64_URLSAFE, 40, 4096),
    prefix("render_api_key", &["rnd_"], ALNUM, 32, 32),
    prefix("neon_api_key", &["napi_"], LOWER_DIGIT, 64, 64),
    prefix("grafana_cloud_token", &["glc_"], B64, 32, 400),
    prefix("grafana_service_account_token", &["glsa_"], WORD, 41, 41),
    keyed("kubeconfig_client_key", &["client-key-data"], B64, 40, 16384),
    // Code hosts, registries and CI.
    prefix("github_classic_pat", &["ghp_"], ALNUM, 36, 36),
    prefix("github_fine_grained_pat", &["github_pat_"], WORD, 82, 82),
    prefix("github_app_installation_token", &["ghs_"], ALNUM, 36, 36),
    prefix("github_user_to_server_token", &["ghu_"], ALNUM, 36, 36),
    prefix("github_oauth_token", &["gho_"], ALNUM, 36, 36),
    prefix("github_refresh_token", &["ghr_"], ALNUM, 36, 76),
    prefix("gitlab_pat", &["glpat-"], URLSAFE_DOT, 20, 80),
    prefix("gitlab_deploy_token", &["gldt-"], URLSAFE, 20, 64),
    prefix("gitlab_runner_token", &["glrt-", "GR1348941"], URLSAFE_DOT, 20, 80),
    prefix("gitlab_pipeline_trigger_token", &["glptt-"], HEX, 40, 40),
    prefix("gitlab_oauth_secret", &["gloas-"], LOWER_DIGIT, 64, 64),
    prefix("bitbucket_app_password", &["ATBB"], URLSAFE, 28, 64),
    prefix("atlassian_api_token", &["ATATT3", "ATCTT3"], Set(URLSAFE.0 | super::chars::EQUALS), 50, 400),
    prefix("npm_token", &["npm_"], ALNUM, 36, 36),
    keyed("npmrc_auth_token", &["_authtoken"], Set(URLSAFE_DOT.0 | super::chars::PLUS_SLASH | super::chars::EQUALS), 20, 512),
    prefix("pypi_token", &["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"], URLSAFE, 50, 512),
    prefix("docker_hub_token", &["dckr_pat_", "dckr_oat_"], URLSAFE, 27, 64),
    prefix("rubygems_api_key", &["rubygems_"], HEX, 48, 48),
    prefix("nuget_api_key", &["oy2"], LOWER_DIGIT, 43, 43),
    prefix("clojars_token", &["CLOJARS_"], ALNUM, 60, 60),
    prefix("circleci_token", &["CCIPAT_", "CCIPRJ_"], WORD, 20, 128),
    prefix("buildkite_token", &["bkua_"], LOWER_DIGIT, 40, 40),
    prefix("jfrog_reference_token", &["cmVmdGtuOjAxOj"], B64, 40, 128),
    prefix("postman_api_key", &["PMAK-"], HEX_DASH, 59, 59),
    prefix("sonarqube_token", &["squ_", "sqp_", "sqa_"], HEX, 40, 40),
    // Chat and SaaS.
    prefix("slack_bot_token", &["xoxb-"], SLACK, 20, 250),
    prefix("slack_user_token", &["xoxp-", "xoxe.xoxp-"], SLACK, 20, 250),
    prefix("slack_app_token", &["xapp-"], SLACK, 20, 250),
    prefix("slack_legacy_token", &["xoxa-", "xoxr-", "xoxs-", "xoxo-"], SLACK, 20, 250),
    prefix("slack_webhook_url", &["hooks.slack.com/services/", "hooks.slack.com/workflows/"], WEBHOOK_PATH, 40, 200),
    check(
        "discord_webhook_url",
        DataClass::Credential,
        &["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
        shapes::discord_webhook,
    ),
    check("telegram_bot_token", DataClass::Credential, &[":AA"], shapes::telegram_bot_token),
    prefix("stripe_live_secret_key", &["sk_live_"], ALNUM, 24, 247),
    prefix("stripe_restricted_key", &["rk_live_"], ALNUM, 24, 247),
    prefix("stripe_webhook_secret", &["whsec_"], B64, 32, 128),
    mild(prefix("stripe_test_secret_key", &["sk_test_", "rk_test_"], ALNUM, 24, 247)),
    prefix("twilio_api_key", &["SK"], HEX, 32, 32),
    check("sendgrid_api_key", DataClass::Credential, &["SG."], shapes::sendgrid),
    prefix("mailgun_api_key", &["key-"], HEX, 32, 32),
    check("mailchimp_api_key", DataClass::Credential, &["-us"], shapes::mailchimp),
    prefix("shopify_access_token", &["shpat_", "shpca_", "shppa_"], HEX, 32, 32),
    prefix("shopify_shared_secret", &["shpss_"], HEX, 32, 32),
    prefix("linear_api_key", &["lin_api_", "lin_oauth_"], ALNUM, 40, 64),
    prefix("notion_token", &["ntn_", "secret_"], ALNUM, 43, 46),
    keyed("datadog_api_key", &["dd_api_key", "datadog_api_key", "dd-api-key"], HEX, 32, 32),
    keyed("datadog_app_key", &["dd_app_key", "dd_application_key", "datadog_app_key", "dd-application-key"], HEX, 40, 40),
    prefix("newrelic_api_key", &["NRAK-", "NRAA-"], UPPER_DIGIT, 27, 27),
    prefix("newrelic_insights_key", &["NRII-", "NRIQ-"], URLSAFE, 32, 32),
    check("newrelic_license_key", DataClass::Credential, &["NRAL"], shapes::newrelic_license),
    prefix("sentry_auth_token", &["sntrys_"], Set(B64.0 | super::chars::UNDERSCORE), 60, 400),
    prefix("sentry_user_token", &["sntryu_"], HEX, 64, 64),
    prefix("hubspot_private_app_token", &["pat-na1-", "pat-eu1-"], HEX_DASH, 36, 36),
    prefix("square_access_token", &["sq0atp-", "EAAA"], URLSAFE, 22, 60),
    prefix("square_oauth_secret", &["sq0csp-"], URLSAFE, 43, 43),
    check("braintree_access_token", DataClass::Credential, &["access_token$production$"], shapes::braintree),
    prefix("facebook_access_token", &["EAACEdEose0cBA"], ALNUM, 20, 400),
    prefix("mapbox_secret_token", &["sk.eyJ"], URLSAFE_DOT, 50, 400),
    prefix("contentful_token", &["CFPAT-"], URLSAFE, 43, 43),
    prefix("figma_token", &["figd_"], URLSAFE, 40, 64),
    prefix("typeform_token", &["tfp_"], URLSAFE_DOT, 40, 64),
    prefix("onepassword_service_account_token", &["ops_eyJ"], B64_URLSAFE, 50, 4096),
    prefix("shippo_live_token", &["shippo_live_"], HEX, 40, 40),
    prefix(
        "flutterwave_secret_key",
        &["FLWSECK-", "FLWSECK_TEST-"],
        Set(HEX.0 | super::chars::HEX_UPPER | super::chars::DASH | super::chars::UPPER),
        32,
        40,
    ),
    prefix("adafruit_io_key", &["aio_"], ALNUM, 28, 28),
    prefix("age_secret_key", &["AGE-SECRET-KEY-1"], AGE, 58, 58),
    // AI providers.
    // (The admin key first: of two detectors claiming the same bytes, the earlier names it.)
    prefix("anthropic_admin_key", &["sk-ant-admin"], URLSAFE, 80, 200),
    // Any other `sk-ant-` key, whatever its kind and length: the prefix alone is Anthropic's.
    prefix("anthropic_api_key", &["sk-ant-"], URLSAFE, 20, 200),
    prefix("openai_project_key", &["sk-proj-"], URLSAFE, 40, 250),
    prefix("openai_service_account_key", &["sk-svcacct-"], URLSAFE, 40, 250),
    prefix("openai_admin_key", &["sk-admin-"], URLSAFE, 40, 250),
    check("openai_api_key", DataClass::Credential, &["T3BlbkFJ", "sk-"], shapes::openai_legacy),
    prefix("openrouter_api_key", &["sk-or-v1-"], HEX, 64, 64),
    prefix("huggingface_token", &["hf_", "api_org_"], ALNUM, 34, 40),
    prefix("groq_api_key", &["gsk_"], ALNUM, 52, 52),
    prefix("replicate_api_token", &["r8_"], ALNUM, 37, 40),
    prefix("perplexity_api_key", &["pplx-"], ALNUM, 48, 48),
    prefix("xai_api_key", &["xai-"], ALNUM, 80, 80),
    prefix("langsmith_api_key", &["lsv2_pt_", "lsv2_sk_"], HEX_UNDERSCORE, 43, 43),
    prefix("pinecone_api_key", &["pcsk_"], WORD, 40, 128),
    prefix("tavily_api_key", &["tvly-"], URLSAFE, 32, 64),
    prefix("firecrawl_api_key", &["fc-"], HEX, 32, 32),
    keyed("cohere_api_key", &["cohere_api_key", "co_api_key"], ALNUM, 40, 40),
    keyed("mistral_api_key", &["mistral_api_key"], ALNUM, 32, 32),
    // Private keys.
    check(
        PEM_PRIVATE_KEY,
        DataClass::PrivateKey,
        &[
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----",
            "-----BEGIN DSA PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        ],
        shapes::pem_block,
    ),
    check("openssh_private_key", DataClass::PrivateKey, &["-----BEGIN OPENSSH PRIVATE KEY-----"], shapes::pem_block),
    check("pgp_private_key", DataClass::PrivateKey, &["-----BEGIN PGP PRIVATE KEY BLOCK-----"], shapes::pem_block),
    check("putty_private_key", DataClass::PrivateKey, &["PuTTY-User-Key-File-"], shapes::putty),
    // Tokens and connection strings.
    check("kubernetes_service_account_token", DataClass::Credential, &["eyJ"], shapes::kubernetes_jwt),
    check("jwt", DataClass::Credential, &["eyJ"], shapes::jwt),
    check(
        "database_url_with_password",
        DataClass::Credential,
        &[
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
            "mongodb://",
            "mongodb+srv://",
            "mssql://",
            "sqlserver://",
            "oracle://",
            "clickhouse://",
            "cockroachdb://",
            "couchdb://",
        ],
        shapes::url_password,
    ),
    check(
        "broker_url_with_password",
        DataClass::Credential,
        &["redis://", "rediss://", "amqp://", "amqps://", "nats://", "mqtt://", "mqtts://", "kafka://", "memcached://"],
        shapes::url_password,
    ),
    // Any other scheme (`smtp://`, `ldap://`, `git+ssh://` …): the databases and brokers above
    // name their own findings.
    check("url_with_credentials", DataClass::Credential, &["://"], shapes::url_password),
    check("basic_auth_header", DataClass::Credential, &["basic "], shapes::basic_auth),
    // Wallet secrets.
    check(
        "extended_private_key",
        DataClass::CryptoKey,
        &["xprv", "tprv", "yprv", "zprv", "Yprv", "Zprv", "uprv", "vprv"],
        shapes::extended_private_key,
    ),
    check(
        "ethereum_private_key",
        DataClass::CryptoKey,
        &["private_key", "privatekey", "private-key", "eth_key", "wallet_key", "mnemonic_key"],
        shapes::hex_private_key,
    ),
    run(BITCOIN_WIF, DataClass::CryptoKey),
    run(BIP39, DataClass::CryptoKey),
    // Personal numbers.
    run(CREDIT_CARD, DataClass::Pii),
    run(IBAN, DataClass::Pii),
    run(US_SSN, DataClass::Pii),
    // Config files that keep a secret under their own keys: Twilio's auth token (the secret
    // half beside the account SID), a `.netrc` machine's password.
    keyed("twilio_auth_token", &["twilio_auth_token"], HEX, 32, 32),
    check("netrc_password", DataClass::Credential, &["machine "], shapes::netrc_password),
    // Passwords in the files and command lines that keep them (`password_shapes`): each is
    // confirmed by the structure around it, not by a prefix of its own.
    check(
        "connection_string_password",
        DataClass::Credential,
        &["password=", "pwd="],
        password_shapes::connection_string_password,
    ),
    check(
        "password_hash",
        DataClass::Credential,
        &["$2a$", "$2b$", "$2y$", "$1$", "$apr1$", "$5$", "$6$", "$y$"],
        password_shapes::password_hash,
    ),
    check("docker_config_auth", DataClass::Credential, &["\"auth\""], password_shapes::docker_config_auth),
    check("pgpass_password", DataClass::Credential, &[":5432:"], password_shapes::pgpass_password),
    check(
        "command_line_password",
        DataClass::Credential,
        &["mysql ", "mysqldump ", "mysqladmin ", "mariadb ", "mariadb-dump ", "sshpass ", "redis-cli ", "curl ", "wget "],
        password_shapes::command_line_password,
    ),
    // Heroku's API keys before the `HRKU-` prefix: a UUID under the CLI's own variable names.
    keyed(
        "heroku_legacy_api_key",
        &["heroku_api_key", "heroku_api_token", "heroku_auth_token", "heroku_oauth_token"],
        HEX_DASH,
        36,
        36,
    ),
    // Generic, last: a vendor format above names the finding when both match.
    check("bearer_token", DataClass::Credential, &["bearer "], shapes::bearer),
    mild(check(
        "generic_secret_assignment",
        DataClass::Credential,
        &[
            "password",
            "passwd",
            "_pass",
            "secret",
            "api_key",
            "apikey",
            "api-key",
            "access_token",
            "auth_token",
            "client_secret",
            "private_key",
        ],
        shapes::secret_assignment,
    )),
];

/// The detector with this id (an ordered index of the ids, built once: the engine names the
/// detectors it finds itself by id, per finding).
pub fn by_id(id: &str) -> Option<(usize, &'static Detector)> {
    use std::collections::BTreeMap;
    use std::sync::OnceLock;
    static INDEX: OnceLock<BTreeMap<&'static str, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| DETECTORS.iter().enumerate().map(|(i, d)| (d.id, i)).collect());
    let i = *index.get(id)?;
    DETECTORS.get(i).map(|d| (i, d))
}

/// The index of a detector the engine names itself (always present: the table above lists
/// them).
pub fn index_of(id: &str) -> usize {
    by_id(id).map(|(i, _)| i).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case_and_there_are_at_least_seventy() {
        let mut ids: Vec<&str> = DETECTORS.iter().map(|d| d.id).collect();
        assert!(ids.len() >= 70, "{} detectors", ids.len());
        for id in &ids {
            assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{id}");
        }
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate detector id");
    }

    #[test]
    fn every_anchored_detector_has_anchors_and_run_detectors_have_none() {
        for d in DETECTORS {
            match d.rule {
                Rule::Run => assert!(d.anchors.is_empty(), "{}", d.id),
                _ => assert!(!d.anchors.is_empty() && d.anchors.iter().all(|a| !a.is_empty()), "{}", d.id),
            }
        }
    }
}
