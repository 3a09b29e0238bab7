//! `infra/service-env.tsv`, the one list of each service's environment variables.
//!
//! Each service tests that its `Config` needs exactly the variables marked required
//! there; the Kubernetes check tests that each Deployment sets them.

use common::config::Env;

/// The table's example, or a real value where the example only names one (keys are
/// generated, never written in the repository).
fn example_value(example: &str) -> String {
    match example {
        "(generated Ed25519 private key)" => crate::test_private_key().to_pem(),
        "(generated Ed25519 public key)" => crate::test_private_key().public().to_pem(),
        other => other.to_owned(),
    }
}

pub struct ServiceEnv {
    /// `(variable, example)` of every required variable.
    pub required: Vec<(String, String)>,
}

impl ServiceEnv {
    pub fn of(service: &str) -> Self {
        let path = crate::workspace_root().join("infra/service-env.tsv");
        let table = std::fs::read_to_string(&path).expect("read infra/service-env.tsv");
        let required = table
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split('\t').collect::<Vec<_>>())
            .filter(|cols| cols.first() == Some(&service) && cols.get(2) == Some(&"yes"))
            .map(|cols| {
                (
                    cols[1].to_owned(),
                    example_value(cols.get(3).copied().unwrap_or("")),
                )
            })
            .collect::<Vec<_>>();
        assert!(!required.is_empty(), "no required variables for {service}");
        Self { required }
    }

    /// An environment with every required variable set to its example.
    pub fn complete(&self) -> Env {
        Env::from_pairs(self.required.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The complete environment without one variable.
    pub fn without(&self, variable: &str) -> Env {
        Env::from_pairs(
            self.required
                .iter()
                .filter(|(k, _)| k != variable)
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// Asserts that `load` succeeds with the required variables and names each one that
    /// is missing.
    pub fn assert_config_needs_exactly_these<T, E: std::fmt::Display>(
        &self,
        load: impl Fn(&Env) -> Result<T, E>,
    ) {
        if let Err(err) = load(&self.complete()) {
            panic!("config fails with every required variable set: {err}");
        }
        for (variable, _) in &self.required {
            match load(&self.without(variable)) {
                Ok(_) => panic!(
                    "{variable} is marked required in infra/service-env.tsv but the config does not need it"
                ),
                Err(err) => assert!(
                    err.to_string().contains(variable.as_str()),
                    "error does not name {variable}: {err}"
                ),
            }
        }
    }
}
