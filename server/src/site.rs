//! The built site (wasm, JS, CSS) must be the one built with this binary. `cargo leptos build`
//! names the site's files by their hash (`pkg/portal.<hash>.wasm`) and writes the hashes to
//! `hash.txt` beside the binary it built; the pages name those files. Before serving, the
//! portal checks that the site folder holds the files its binary names, and refuses to start
//! when it holds another build's (a release binary beside a debug site, say), whose wasm would
//! fail to hydrate every page.

use std::path::{Path, PathBuf};

use app::SITE_NAME;

/// The file beside the binary that names the site's files.
pub const HASH_FILE: &str = "hash.txt";

/// What the portal serves the pages with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// The files named in `hash.txt`: the site built with this binary.
    Hashed,
    /// `pkg/portal.{js,wasm,css}` without hashes (a site built without hashing).
    Plain,
    /// No built site: pages render, but are not interactive.
    Missing,
}

/// Why the site can't be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SiteError {
    /// The site holds another build's files.
    #[error(
        "the site in {site} was not built with this binary: it has no {missing}; build them together \
         with `cargo leptos build` (`--release` for a release binary), or point LEPTOS_SITE_ROOT at the \
         site built with the binary in {binary}"
    )]
    Mismatch { site: String, missing: String, binary: String },
    /// The hash file can't be read.
    #[error("{0} can't be read: {1}")]
    HashFile(String, String),
}

/// Checks the site in `site_root` (its files under `pkg/`) against the binary in `exe_dir`.
pub fn check(exe_dir: &Path, site_root: &Path) -> Result<Site, SiteError> {
    let pkg = site_root.join("pkg");
    if !pkg.is_dir() {
        return Ok(Site::Missing);
    }
    let mismatch = |missing: &Path| SiteError::Mismatch {
        site: site_root.display().to_string(),
        missing: missing.strip_prefix(site_root).unwrap_or(missing).display().to_string(),
        binary: exe_dir.display().to_string(),
    };
    let hash_file = exe_dir.join(HASH_FILE);
    if !hash_file.exists() {
        // A binary built without cargo-leptos's hashing serves the plain names.
        let plain = pkg.join(format!("{SITE_NAME}.wasm"));
        return if plain.exists() { Ok(Site::Plain) } else { Err(mismatch(&plain)) };
    }
    let text = std::fs::read_to_string(&hash_file)
        .map_err(|e| SiteError::HashFile(hash_file.display().to_string(), e.to_string()))?;
    let named: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(kind, _)| ["js", "wasm", "css"].contains(&kind.trim()))
        .map(|(kind, hash)| pkg.join(format!("{SITE_NAME}.{}.{}", hash.trim(), kind.trim())))
        .collect();
    if named.is_empty() {
        return Err(SiteError::HashFile(hash_file.display().to_string(), "it names no site files".into()));
    }
    match named.iter().find(|file| !file.exists()) {
        Some(missing) => Err(mismatch(missing)),
        None => Ok(Site::Hashed),
    }
}

/// The folder of the running binary, where cargo-leptos put its `hash.txt`.
pub fn exe_dir() -> PathBuf {
    std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A binary folder with a hash file naming `hash` for each kind, and a site holding `files`.
    fn layout(hash: Option<&str>, files: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (exe, site) = (dir.path().join("release"), dir.path().join("site"));
        std::fs::create_dir_all(&exe).unwrap();
        if let Some(hash) = hash {
            write(&exe.join(HASH_FILE), &format!("js: {hash}\nwasm: {hash}\ncss: {hash}\n"));
        }
        for file in files {
            write(&site.join("pkg").join(file), "x");
        }
        (dir, exe, site)
    }

    #[test]
    fn the_site_built_with_the_binary_is_served_by_its_hashed_names() {
        let (_dir, exe, site) = layout(Some("R1"), &["portal.R1.js", "portal.R1.wasm", "portal.R1.css"]);
        assert_eq!(check(&exe, &site), Ok(Site::Hashed));
    }

    #[test]
    fn another_builds_site_is_refused_with_the_missing_file_named() {
        // A release binary started beside the debug site that `scripts/test.sh` built.
        let (_dir, exe, site) = layout(Some("R1"), &["portal.D2.js", "portal.D2.wasm", "portal.D2.css"]);
        let err = check(&exe, &site).unwrap_err();
        assert!(matches!(&err, SiteError::Mismatch { missing, .. } if missing.ends_with("portal.R1.js")), "{err}");
        assert!(err.to_string().contains("cargo leptos build"), "{err}");
    }

    #[test]
    fn a_binary_without_a_hash_file_serves_plain_names_and_refuses_a_hashed_site() {
        let (_dir, exe, site) = layout(None, &["portal.js", "portal.wasm", "portal.css"]);
        assert_eq!(check(&exe, &site), Ok(Site::Plain));
        let (_dir, exe, site) = layout(None, &["portal.D2.js", "portal.D2.wasm", "portal.D2.css"]);
        assert!(matches!(check(&exe, &site), Err(SiteError::Mismatch { .. })));
    }

    #[test]
    fn no_site_at_all_is_served_without_one() {
        let (_dir, exe, _) = layout(Some("R1"), &[]);
        assert_eq!(check(&exe, &exe.join("nowhere")), Ok(Site::Missing));
    }

    #[test]
    fn a_hash_file_naming_nothing_is_an_error() {
        let (_dir, exe, site) = layout(None, &["portal.js"]);
        write(&exe.join(HASH_FILE), "garbage\n");
        assert!(matches!(check(&exe, &site), Err(SiteError::HashFile(..))));
    }
}
