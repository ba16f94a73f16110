//! `modelreg providers`: the providers a custom model can use, and what adding one asks for
//! (`GET /v1/providers`, the description the console's dialog is built from).

use api::{ProviderInfo, ProviderList};

use super::args::Remote;
use super::http::{Answer, Client};
use super::output::{show, table};

pub(crate) async fn run(remote: Remote) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let answer: Answer<ProviderList> = client.get("/v1/providers").answer().await?;
    show(client.json, &answer, |list| provider_table(&list.providers))
}

/// A row a provider: its `--provider` name, the credential it takes (each alternative's
/// secret fields, `|` between alternatives), the endpoint input and the model id's form.
fn provider_table(providers: &[ProviderInfo]) -> Vec<String> {
    let rows = providers.iter().map(|p| {
        let credential = p
            .credential_alternatives
            .iter()
            .map(|alternative| {
                let fields: Vec<&str> = alternative
                    .fields
                    .iter()
                    .map(|f| f.name.trim_start_matches("credential."))
                    .collect();
                format!("{} ({})", alternative.label, fields.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" | ");
        let credential = match (credential.is_empty(), p.credential_required) {
            (true, _) => "none".to_owned(),
            (false, true) => credential,
            (false, false) => format!("optional: {credential}"),
        };
        let endpoint = p.endpoint.as_ref().map_or_else(
            || "-".to_owned(),
            |e| {
                let need = if e.required { "" } else { " (optional)" };
                format!("{}{need}", e.label)
            },
        );
        vec![
            p.name.clone(),
            credential,
            endpoint,
            format!("{} (e.g. {})", p.model_id.form, p.model_id.example),
        ]
    });
    table(&["PROVIDER", "CREDENTIAL", "ENDPOINT", "MODEL ID"], rows)
}
