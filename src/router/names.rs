//! Model names to groups: a group named with `*` (`claude-*`, `*`) serves every name it
//! matches that no group has exactly, the most specific pattern first (the one with the
//! most characters besides `*`), as LiteLLM's wildcard routing picks. So a team can send
//! every `claude-*` name Claude Code asks for to one group, whatever provider serves it.

/// The wildcard group names, most specific first.
#[derive(Debug, Default)]
pub(super) struct Patterns(Vec<String>);

impl Patterns {
    pub(super) fn new<'a>(groups: impl Iterator<Item = &'a String>) -> Self {
        let mut patterns: Vec<String> = groups.filter(|g| g.contains('*')).cloned().collect();
        patterns.sort_by(|a, b| literal_len(b).cmp(&literal_len(a)).then_with(|| a.cmp(b)));
        Self(patterns)
    }

    /// The pattern serving `name`, if one matches.
    pub(super) fn find(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|p| matches(p, name)).map(String::as_str)
    }
}

fn literal_len(pattern: &str) -> usize {
    pattern.chars().filter(|c| *c != '*').count()
}

/// Whether `name` matches `pattern`, where each `*` stands for any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let mut parts: Vec<&str> = parts.collect();
    // No `*`: the whole name must be the pattern.
    let Some(last) = parts.pop() else { return rest.is_empty() };
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_and_literals_must_match_in_order() {
        assert!(matches("claude-*", "claude-sonnet-4-5-20250929"));
        assert!(matches("claude-*", "claude-"));
        assert!(!matches("claude-*", "gpt-4o"));
        assert!(matches("*", ""));
        assert!(matches("*-haiku-*", "claude-3-5-haiku-latest"));
        assert!(!matches("*-haiku-*", "claude-sonnet"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("a*b*c", "acb"));
        assert!(!matches("ab*ba", "aba"), "the prefix and suffix may not overlap");
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let groups = ["*".to_string(), "claude-*".to_string(), "claude-*-haiku*".to_string(), "gpt".to_string()];
        let patterns = Patterns::new(groups.iter());
        assert_eq!(patterns.find("claude-3-haiku-x"), Some("claude-*-haiku*"));
        assert_eq!(patterns.find("claude-opus-4"), Some("claude-*"));
        assert_eq!(patterns.find("llama"), Some("*"));
    }
}
