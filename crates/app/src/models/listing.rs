//! A page of the org's models: searched, filtered and paged on the server, so a client (the
//! console above all) never holds 10,000 models to show fifty. Platform models come first in
//! catalog order, then custom ones in slug order; a cursor names the last model shown.

use domain::Invalid;

use crate::{Answer, AppError, Ctx, Registry, credentials, present};

/// The most models one page holds.
pub const MAX_LIMIT: u32 = 500;

/// The models `query` asks for: with no page or filter, all of them (as [`super::list`]).
pub fn page(
    registry: &Registry,
    ctx: &Ctx,
    query: &api::ModelsQuery,
) -> Result<Answer<api::ModelList>, AppError> {
    if !query.pages_or_filters() {
        return super::list(registry, ctx);
    }
    let filter = Filter::parse(query)?;
    let position = registry.views.position();
    let platform = crate::catalog::org_view_in(registry, &registry.views, ctx)?;
    let cursor = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let limit = query.limit.unwrap_or(MAX_LIMIT) as usize;

    let platform_matches: Vec<api::PlatformModel> = match filter.kind {
        Some(Kind::Custom) => Vec::new(),
        _ => platform
            .models
            .into_iter()
            .filter(|model| filter.platform(model))
            .collect(),
    };
    let split = platform_matches.len();
    // Where the page starts among the platform matches, and after which slug among the
    // custom ones (`None`: from the first).
    let (platform_start, custom_after) = match &cursor {
        None => (0, None),
        Some(Cursor::Platform(id)) => {
            // Catalog order is no key order: a platform model that is not in this list (a
            // cursor from another list, or a model hidden since) leaves no place to go on
            // from, and guessing one would skip or repeat models without a word.
            let Some(at) = platform_matches.iter().position(|model| &model.id == id) else {
                return Err(AppError::invalid(Invalid::new(
                    "cursor",
                    "cursor.invalid",
                    "this cursor is not from this list, or its model left the list since; list again without a cursor",
                )));
            };
            (at + 1, None)
        }
        Some(Cursor::Custom(slug)) => (split, Some(slug.as_str())),
    };
    let page_platform: Vec<api::PlatformModel> = platform_matches
        .into_iter()
        .skip(platform_start)
        .take(limit)
        .collect();
    let room = limit - page_platform.len();
    let platform_more = platform_start + page_platform.len() < split;
    let org = ctx.org.as_str();
    let (matching, page_rows, more) = if filter.kind == Some(Kind::Platform) {
        (split as u64, Vec::new(), platform_more)
    } else if filter.leaves_custom_unfiltered() {
        // No filter on custom models: the page is a range of the views from the cursor on,
        // and the match count a count of keys, so a page costs its own rows.
        let custom = registry.views.count_models(org)?;
        let mut rows = if room > 0 {
            registry.views.models_after(org, custom_after, room + 1)?
        } else {
            Vec::new()
        };
        let more = if room == 0 {
            platform_more || (custom_after.is_none() && custom > 0)
        } else {
            rows.len() > room
        };
        rows.truncate(room);
        (split as u64 + custom, rows, more)
    } else {
        // Custom models are filtered on their rows; only the page's are presented (with
        // their advice and credential summary), so 10,000 models cost a scan, not 10,000
        // answers.
        let custom_matches: Vec<views::ModelRow> = registry
            .views
            .models(org)?
            .into_iter()
            .filter(|row| filter.custom(row))
            .collect();
        let from = match custom_after {
            Some(slug) => custom_matches.partition_point(|row| row.model.slug.as_str() <= slug),
            None => 0,
        };
        let after_page = from + room;
        let more = if room == 0 {
            platform_more || !custom_matches.is_empty()
        } else {
            after_page < custom_matches.len()
        };
        let matching = (split + custom_matches.len()) as u64;
        let rows = custom_matches.into_iter().skip(from).take(room).collect();
        (matching, rows, more)
    };
    let mut page_custom = Vec::with_capacity(page_rows.len());
    for row in &page_rows {
        let credential = match &row.model.credential_id {
            Some(id) => registry
                .views
                .credential(org, id.as_str())?
                .map(|credential| credentials::summary(registry, &credential)),
            None => None,
        };
        page_custom.push(present::model(row, credential));
    }
    let next_cursor = more.then(|| match page_custom.last() {
        Some(model) => Cursor::Custom(model.slug.clone()).to_string(),
        None => match page_platform.last() {
            Some(model) => Cursor::Platform(model.id.clone()).to_string(),
            None => String::new(),
        },
    });
    Ok(Answer {
        value: api::ModelList {
            platform: page_platform,
            custom: page_custom,
            default_model: Some(platform.default),
            hidden_platform: platform.hidden,
            next_cursor: next_cursor.filter(|cursor| !cursor.is_empty()),
            matching: Some(matching),
        },
        position,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Platform,
    Custom,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capability {
    JsonMode,
    Vision,
    ToolUse,
    Reasoning,
}

/// A query's search and filters, parsed once.
struct Filter {
    words: Vec<String>,
    provider: Option<String>,
    capability: Option<Capability>,
    status: Option<String>,
    kind: Option<Kind>,
}

impl Filter {
    fn parse(query: &api::ModelsQuery) -> Result<Self, AppError> {
        let mut problems = Vec::new();
        if query.as_of.is_some() {
            problems.push(Invalid::new(
                "as_of",
                "as_of.with_page",
                "as_of answers every model at once; leave out limit, cursor, q and the filters",
            ));
        }
        if let Some(limit) = query.limit
            && !(1..=MAX_LIMIT).contains(&limit)
        {
            problems.push(Invalid::new(
                "limit",
                "limit.out_of_range",
                format!("limit takes 1 to {MAX_LIMIT}"),
            ));
        }
        let capability = match query.capability.as_deref() {
            None | Some("") => None,
            Some("json_mode") => Some(Capability::JsonMode),
            Some("vision") => Some(Capability::Vision),
            Some("tool_use") => Some(Capability::ToolUse),
            Some("reasoning") => Some(Capability::Reasoning),
            Some(_) => {
                problems.push(Invalid::new(
                    "capability",
                    "capability.unknown",
                    "capability takes json_mode, vision, tool_use or reasoning",
                ));
                None
            }
        };
        let status = match query.status.as_deref() {
            None | Some("") => None,
            Some(status @ ("active" | "deactivated" | "retired")) => Some(status.to_owned()),
            Some(_) => {
                problems.push(Invalid::new(
                    "status",
                    "status.unknown",
                    "status takes active, deactivated or retired",
                ));
                None
            }
        };
        let kind = match query.kind.as_deref() {
            None | Some("") => None,
            Some("platform") => Some(Kind::Platform),
            Some("custom") => Some(Kind::Custom),
            Some(_) => {
                problems.push(Invalid::new(
                    "kind",
                    "kind.unknown",
                    "kind takes platform or custom",
                ));
                None
            }
        };
        if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            problems.push(Invalid::new(
                "q",
                "q.too_long",
                "search with at most 200 characters",
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        Ok(Self {
            words: query
                .q
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_lowercase)
                .collect(),
            provider: query.provider.clone().filter(|p| !p.is_empty()),
            capability,
            status,
            kind,
        })
    }

    /// Whether every custom model matches (no search, provider, capability or status).
    fn leaves_custom_unfiltered(&self) -> bool {
        self.words.is_empty()
            && self.provider.is_none()
            && self.capability.is_none()
            && self.status.is_none()
    }

    fn words_in(&self, texts: &[&str]) -> bool {
        if self.words.is_empty() {
            return true;
        }
        self.words.iter().all(|word| {
            texts
                .iter()
                .any(|text| text.to_lowercase().contains(word.as_str()))
        })
    }

    fn platform(&self, model: &api::PlatformModel) -> bool {
        let capable = match self.capability {
            None => true,
            Some(Capability::JsonMode) => model.capabilities.json_mode == Some(true),
            Some(Capability::Vision) => model.capabilities.vision == Some(true),
            Some(Capability::ToolUse) => model.capabilities.tool_use == Some(true),
            Some(Capability::Reasoning) => model.capabilities.reasoning.is_some(),
        };
        capable
            && self.provider.as_ref().is_none_or(|p| *p == model.provider)
            && self.status.as_ref().is_none_or(|s| *s == model.status)
            && self.words_in(&[&model.display_name, &model.id])
    }

    fn custom(&self, row: &views::ModelRow) -> bool {
        let model = &row.model;
        let capabilities = &model.capabilities;
        let capable = match self.capability {
            None => true,
            Some(Capability::JsonMode) => capabilities.json_mode,
            Some(Capability::Vision) => capabilities.vision,
            Some(Capability::ToolUse) => capabilities.tool_use,
            Some(Capability::Reasoning) => capabilities.reasoning.is_some(),
        };
        capable
            && self
                .provider
                .as_ref()
                .is_none_or(|p| p == model.provider.as_str())
            && self
                .status
                .as_ref()
                .is_none_or(|s| s == model.status.as_str())
            && self.words_in(&[
                model.display_name.as_str(),
                model.slug.as_str(),
                model.provider_model_id.as_str(),
            ])
    }
}

/// Where a page ends: `p:<platform id>` or `c:<slug>`.
enum Cursor {
    Platform(String),
    Custom(String),
}

impl Cursor {
    fn parse(raw: &str) -> Result<Self, AppError> {
        match raw.split_once(':') {
            Some(("p", id)) if !id.is_empty() => Ok(Self::Platform(id.to_owned())),
            Some(("c", slug)) if !slug.is_empty() => Ok(Self::Custom(slug.to_owned())),
            _ => Err(AppError::invalid(Invalid::new(
                "cursor",
                "cursor.invalid",
                "pass the next_cursor of the page before, unchanged",
            ))),
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Platform(id) => write!(f, "p:{id}"),
            Self::Custom(slug) => write!(f, "c:{slug}"),
        }
    }
}
