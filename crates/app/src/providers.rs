//! The providers a custom model can use, as a form presents them: each one's credential
//! alternatives and fields, endpoint field and model id form, from `domain`'s description.

use domain::provider::{Field, Provider};

use crate::{Answer, AppError, Ctx, Registry};

/// Every provider, in the domain's order.
pub fn list(registry: &Registry, _ctx: &Ctx) -> Result<Answer<api::ProviderList>, AppError> {
    Ok(Answer {
        value: api::ProviderList {
            providers: Provider::ALL.into_iter().map(info).collect(),
        },
        position: registry.views.position(),
    })
}

/// One provider's form.
pub fn info(provider: Provider) -> api::ProviderInfo {
    let form = provider.model_id_form();
    api::ProviderInfo {
        name: provider.as_str().to_owned(),
        label: provider.label().to_owned(),
        credential_required: !provider.credential_optional(),
        credential_alternatives: provider
            .credential_kinds()
            .iter()
            .map(|kind| api::CredentialAlternative {
                kind: kind.as_str().to_owned(),
                label: kind.label().to_owned(),
                fields: kind.fields().iter().map(field).collect(),
            })
            .collect(),
        endpoint: provider.endpoint_field().as_ref().map(field),
        model_id: api::ModelIdForm {
            form: form.form.to_owned(),
            example: form.example.to_owned(),
        },
    }
}

fn field(field: &Field) -> api::ProviderField {
    api::ProviderField {
        name: field.name.to_owned(),
        label: field.label.to_owned(),
        kind: field.kind.as_str().to_owned(),
        required: field.required,
        placeholder: field.placeholder.to_owned(),
        help: field.help.to_owned(),
    }
}
