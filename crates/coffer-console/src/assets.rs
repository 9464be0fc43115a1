//! The embedded assets: every file under `assets/`, compiled into the binary
//! with `include_bytes!`, so the console the server serves is the one built
//! from the same commit.

/// One file of the console.
pub struct Asset {
    /// Its path under [`crate::PREFIX`], e.g. `js/app.js`.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

impl Asset {
    /// The asset at `name`, if there is one (exact match: no path is ever
    /// resolved against the file system).
    pub fn named(name: &str) -> Option<&'static Asset> {
        ASSETS.iter().find(|asset| asset.name == name)
    }
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! assets {
    ($($name:literal => $content_type:expr),* $(,)?) => {
        /// Every asset of the console.
        pub const ASSETS: &[Asset] = &[$(Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/", $name)),
        }),*];
    };
}

assets! {
    "index.html" => HTML,
    "console.css" => CSS,
    "js/app.js" => JS,
    "js/sigv4.js" => JS,
    "js/api.js" => JS,
    "js/ui.js" => JS,
    "js/buckets.js" => JS,
    "js/objects.js" => JS,
    "js/keys.js" => JS,
    "js/users.js" => JS,
    "js/status.js" => JS,
    "js/audit.js" => JS,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The files under `assets/`, as paths relative to it.
    fn files_on_disk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("the assets directory is readable") {
            let entry = entry.expect("a directory entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                files_on_disk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }

    /// `base`'s directory joined with the relative reference `target`.
    fn resolve(base: &str, target: &str) -> String {
        let mut parts: Vec<&str> = base.split('/').collect();
        parts.pop();
        for segment in target.split('/') {
            match segment {
                "." | "" => {}
                ".." => {
                    parts.pop();
                }
                segment => parts.push(segment),
            }
        }
        parts.join("/")
    }

    /// The quoted strings that follow `marker` in `text`.
    fn quoted_after<'t>(text: &'t str, marker: &str) -> Vec<&'t str> {
        text.match_indices(marker)
            .filter_map(|(at, _)| {
                let rest = text[at + marker.len()..].trim_start();
                let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
                rest[1..].split(quote).next()
            })
            .collect()
    }

    /// Every local file an asset references: `src`/`href` in HTML, module
    /// imports in JavaScript.
    fn references(asset: &Asset) -> Vec<String> {
        let text = std::str::from_utf8(asset.bytes).expect("assets are UTF-8 text");
        let found = if asset.name.ends_with(".html") {
            [quoted_after(text, "src="), quoted_after(text, "href=")].concat()
        } else if asset.name.ends_with(".js") {
            [quoted_after(text, " from"), quoted_after(text, "import(")].concat()
        } else {
            Vec::new()
        };
        found
            .into_iter()
            // Fragments and `data:` URLs are not files.
            .filter(|target| {
                !target.is_empty() && !target.starts_with('#') && !target.contains(':')
            })
            .map(|target| resolve(asset.name, target))
            .collect()
    }

    #[test]
    fn every_referenced_asset_is_embedded() {
        let mut checked = 0;
        for asset in ASSETS {
            for target in references(asset) {
                assert!(
                    Asset::named(&target).is_some(),
                    "{} references {target}, which is not embedded",
                    asset.name
                );
                checked += 1;
            }
        }
        assert!(
            checked >= ASSETS.len() - 1,
            "the page and its modules reference each other"
        );
    }

    #[test]
    fn every_file_under_assets_is_embedded_once() {
        let mut on_disk = BTreeSet::new();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        files_on_disk(&dir, "", &mut on_disk);
        let embedded: BTreeSet<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        assert_eq!(embedded.len(), ASSETS.len(), "an asset is listed twice");
        assert_eq!(on_disk, embedded, "assets/ and the ASSETS table differ");
    }

    #[test]
    fn references_resolve_relative_to_their_file() {
        assert_eq!(resolve("index.html", "js/app.js"), "js/app.js");
        assert_eq!(resolve("js/app.js", "./api.js"), "js/api.js");
        assert_eq!(resolve("js/app.js", "../console.css"), "console.css");
    }
}
