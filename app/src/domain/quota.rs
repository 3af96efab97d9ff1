//! What one partner may have and do: so one partner can't fill the portal's tables or keep its
//! dispatcher busy for the others. The operator sets each number (`PORTAL_MAX_WEBHOOKS`, …).

use serde::{Deserialize, Serialize};

/// The operator's limits per partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Webhooks a partner may have.
    pub webhooks: u32,
    /// API keys a partner may have in use (revoked ones don't count).
    pub api_keys: u32,
    /// Users a partner may have.
    pub users: u32,
    /// Resends a partner may ask for in a minute.
    pub resends_per_minute: u32,
    /// Replays a partner may start in a minute.
    pub replays_per_minute: u32,
    /// Test sends ("Test Webhook") a partner may make in a minute.
    pub tests_per_minute: u32,
    /// Replay plans (how many events a replay would send: a count over the partner's events)
    /// a partner's people and keys may ask for in a minute.
    pub replay_plans_per_minute: u32,
    /// Signature checks (the signature checker: a few HMACs over up to 256 KiB each) a
    /// partner's people and keys may ask for in a minute.
    pub signature_checks_per_minute: u32,
    /// Request inspectors (capture URLs) a partner may have at once.
    pub inspectors: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            webhooks: 100,
            api_keys: 20,
            users: 50,
            resends_per_minute: 60,
            replays_per_minute: 5,
            tests_per_minute: 30,
            replay_plans_per_minute: 60,
            signature_checks_per_minute: 60,
            inspectors: 5,
        }
    }
}

/// Things a partner has, counted against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Webhooks.
    Webhooks,
    /// API keys not revoked.
    ApiKeys,
    /// Users.
    Users,
    /// Request inspectors not yet expired.
    Inspectors,
}

impl Counted {
    /// This thing's limit in `quotas`.
    pub fn limit(self, quotas: &Quotas) -> u32 {
        match self {
            Self::Webhooks => quotas.webhooks,
            Self::ApiKeys => quotas.api_keys,
            Self::Users => quotas.users,
            Self::Inspectors => quotas.inspectors,
        }
    }

    /// What a partner is told when it has as many as it may: the limit, what to do, and the
    /// setting that raises it.
    pub fn refusal(self, quotas: &Quotas) -> String {
        let (what, undo, setting) = match self {
            Self::Webhooks => ("webhooks", "delete one", "PORTAL_MAX_WEBHOOKS"),
            Self::ApiKeys => ("API keys", "revoke one", "PORTAL_MAX_API_KEYS"),
            Self::Users => ("users", "remove one", "PORTAL_MAX_USERS"),
            Self::Inspectors => ("request inspectors", "delete one", "PORTAL_MAX_INSPECTORS"),
        };
        format!(
            "Your team has reached its limit of {} {what}: {undo} first, or ask the operator to raise {setting}.",
            self.limit(quotas)
        )
    }
}

/// Actions a partner may take a few times a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    /// Resending a delivery.
    Resend,
    /// Starting a replay.
    Replay,
    /// Sending a test.
    Test,
    /// Planning a replay (counting the events it would send).
    ReplayPlan,
    /// Checking a request's signatures.
    SignatureCheck,
}

impl Metered {
    /// The name the store counts it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resend => "resend",
            Self::Replay => "replay",
            Self::Test => "test",
            Self::ReplayPlan => "replay_plan",
            Self::SignatureCheck => "signature_check",
        }
    }

    /// How many a partner may take in a minute.
    pub fn per_minute(self, quotas: &Quotas) -> u32 {
        match self {
            Self::Resend => quotas.resends_per_minute,
            Self::Replay => quotas.replays_per_minute,
            Self::Test => quotas.tests_per_minute,
            Self::ReplayPlan => quotas.replay_plans_per_minute,
            Self::SignatureCheck => quotas.signature_checks_per_minute,
        }
    }

    /// What a partner is told when it has taken all of a minute's: the limit and the wait.
    pub fn refusal(self, quotas: &Quotas, wait_seconds: u64) -> String {
        let (what, setting) = match self {
            Self::Resend => ("resends", "PORTAL_RESENDS_PER_MINUTE"),
            Self::Replay => ("replays", "PORTAL_REPLAYS_PER_MINUTE"),
            Self::Test => ("test sends", "PORTAL_TESTS_PER_MINUTE"),
            Self::ReplayPlan => ("replay plans", "PORTAL_REPLAY_PLANS_PER_MINUTE"),
            Self::SignatureCheck => ("signature checks", "PORTAL_SIGNATURE_CHECKS_PER_MINUTE"),
        };
        format!(
            "Too many {what}: your team may make {} a minute ({setting}). Try again in {wait_seconds} s.",
            self.per_minute(quotas)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_limit_and_the_setting() {
        let quotas = Quotas::default();
        let words = Counted::Webhooks.refusal(&quotas);
        assert!(words.contains("limit of 100 webhooks") && words.contains("PORTAL_MAX_WEBHOOKS"), "{words}");
        let words = Metered::Test.refusal(&quotas, 12);
        assert!(words.contains("30 a minute") && words.contains("12 s") && words.contains("PORTAL_TESTS_PER_MINUTE"));
    }
}
