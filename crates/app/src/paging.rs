//! Cursor paging of the org's lists (workflows, credentials, tokens): `limit` items after
//! a cursor, which is the id of the last item of the page before. The lists are read as a
//! range of the views from the cursor on, so a page costs its own rows, not the org's.

use domain::Invalid;

use crate::AppError;

/// The most items one page holds.
pub(crate) const MAX_LIMIT: u32 = 500;

/// A page asked for: how many items, after which id.
pub(crate) struct Page {
    pub limit: usize,
    pub after: Option<String>,
}

impl Page {
    /// The page `limit` and `cursor` ask for; `None` when neither is given (the whole list).
    pub(crate) fn parse(
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Option<Self>, AppError> {
        if limit.is_none() && cursor.is_none() {
            return Ok(None);
        }
        let mut problems = Vec::new();
        if let Some(limit) = limit
            && !(1..=MAX_LIMIT).contains(&limit)
        {
            problems.push(Invalid::new(
                "limit",
                "limit.out_of_range",
                format!("limit takes 1 to {MAX_LIMIT}"),
            ));
        }
        if let Some(cursor) = cursor
            && !is_cursor(cursor)
        {
            problems.push(Invalid::new(
                "cursor",
                "cursor.invalid",
                "cursor takes the next_cursor of the page before",
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        Ok(Some(Self {
            limit: limit.unwrap_or(MAX_LIMIT) as usize,
            after: cursor.map(str::to_owned),
        }))
    }

    /// `items` (one more than the limit when more follow) cut to the page, with the cursor of
    /// the next page when there is one.
    pub(crate) fn cut<T>(&self, mut items: Vec<T>, id: impl Fn(&T) -> &str) -> api::Paged<T> {
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        let next_cursor = if more {
            items.last().map(|item| id(item).to_owned())
        } else {
            None
        };
        api::Paged { items, next_cursor }
    }

    /// A page of an in-memory list in its order: the items after the cursor's.
    pub(crate) fn of<T>(&self, items: Vec<T>, id: impl Fn(&T) -> &str) -> api::Paged<T> {
        let start = match &self.after {
            None => 0,
            Some(after) => items
                .iter()
                .position(|item| id(item) == after)
                .map_or(items.len(), |at| at + 1),
        };
        let rest: Vec<T> = items.into_iter().skip(start).take(self.limit + 1).collect();
        self.cut(rest, id)
    }
}

/// Ids are short words of letters, digits, `-`, `_`, `.` and `:`.
fn is_cursor(cursor: &str) -> bool {
    (1..=128).contains(&cursor.len())
        && cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The whole list as one page.
pub(crate) fn whole<T>(items: Vec<T>) -> api::Paged<T> {
    api::Paged {
        items,
        next_cursor: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(page: &api::Paged<String>) -> Vec<&str> {
        page.items.iter().map(String::as_str).collect()
    }

    #[test]
    fn pages_follow_their_cursors_to_the_end() {
        let all: Vec<String> = ["a", "b", "c", "d", "e"].map(str::to_owned).to_vec();
        // Given a limit of 2, When paging from the start, Then each page names the next.
        let first = Page::parse(Some(2), None)
            .unwrap()
            .unwrap()
            .of(all.clone(), |s| s);
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(first.next_cursor.as_deref(), Some("b"));
        let second = Page::parse(Some(2), Some("b"))
            .unwrap()
            .unwrap()
            .of(all.clone(), |s| s);
        assert_eq!(ids(&second), ["c", "d"]);
        let last = Page::parse(Some(2), Some("d"))
            .unwrap()
            .unwrap()
            .of(all.clone(), |s| s);
        assert_eq!(ids(&last), ["e"]);
        assert_eq!(last.next_cursor, None);
        // A page that ends exactly at the end has no next.
        let exact = Page::parse(Some(5), None).unwrap().unwrap().of(all, |s| s);
        assert_eq!(exact.next_cursor, None);
    }

    #[test]
    fn a_wrong_limit_or_cursor_is_refused_without_quoting_it() {
        assert!(Page::parse(None, None).unwrap().is_none());
        for (limit, cursor, code) in [
            (Some(0), None, "limit.out_of_range"),
            (Some(501), None, "limit.out_of_range"),
            (Some(10), Some("sk-live/../x y"), "cursor.invalid"),
            (None, Some(""), "cursor.invalid"),
        ] {
            let Err(AppError::Invalid(problems)) = Page::parse(limit, cursor) else {
                panic!("{limit:?} {cursor:?} was accepted");
            };
            assert_eq!(problems[0].code, code);
            assert!(!problems[0].message.contains("sk-live"));
        }
    }
}
