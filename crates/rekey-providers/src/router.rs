//! Consumer steps (`consumer.deliver`, `promote`, `read_current`) go to the provider of their
//! consumer's type: Secrets Manager to AWS, Actions secrets to GitHub, env files to the local
//! writer.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Values};
use rekey_plan::PlannedStep;
use rekey_spec::Consumer;
use secrecy::SecretString;

pub struct ConsumerRouter {
    pub aws: Option<Arc<dyn Provider>>,
    pub github: Option<Arc<dyn Provider>>,
    pub env_file: Arc<dyn Provider>,
}

impl ConsumerRouter {
    fn route(&self, step: &PlannedStep) -> Result<&Arc<dyn Provider>, String> {
        match &step.target {
            Some(Consumer::AwsSecretsManager { .. }) => self
                .aws
                .as_ref()
                .ok_or_else(|| "AWS is not configured".to_owned()),
            Some(Consumer::EnvFile { .. }) => Ok(&self.env_file),
            Some(Consumer::GithubActionsSecret { .. }) => self
                .github
                .as_ref()
                .ok_or_else(|| "GitHub is not configured".to_owned()),
            None => Err("no consumer on this step".to_owned()),
        }
    }

    fn get(&self, call: &Call<'_>) -> Result<&Arc<dyn Provider>, ProviderError> {
        self.route(call.step).map_err(ProviderError::permanent)
    }
}

#[async_trait]
impl Provider for ConsumerRouter {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        self.route(step).and_then(|p| p.supports(step))
    }

    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        self.route(step)
            .map_err(ProviderError::permanent)?
            .preflight(step)
            .await
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.get(call)?.execute(call).await
    }

    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        self.get(call)?.undo(call, outputs).await
    }

    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        self.get(call)?.reconcile(call).await
    }

    async fn reread(
        &self,
        call: &Call<'_>,
        outputs: &Values,
    ) -> Result<Option<Values>, ProviderError> {
        self.get(call)?.reread(call, outputs).await
    }

    async fn read_back(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        self.get(call)?.read_back(call).await
    }
}
