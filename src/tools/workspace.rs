//! The directory a task's tools may touch, and the one function that keeps every path
//! inside it.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;

/// A task's workspace: a canonical directory that file tools cannot leave.
///
/// Every path a tool receives goes through [`resolve`](Self::resolve): relative paths start
/// at the root; `..`, absolute paths outside the root, and symlinks whose target lies
/// outside (or nowhere) are refused with an error the model can act on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workspace {
    /// Canonical: absolute, no `..`, no symlinks.
    root: PathBuf,
}

impl Workspace {
    /// A workspace rooted at `root`, which must be an existing directory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `root` is not a directory.
    pub fn new(root: impl AsRef<Path>) -> Result<Workspace, Error> {
        let root = root.as_ref();
        let canonical = fs::canonicalize(root).map_err(|error| {
            Error::config(format!(
                "the workspace {} cannot be used: {error}",
                root.display()
            ))
        })?;
        if !canonical.is_dir() {
            return Err(Error::config(format!(
                "the workspace {} is not a directory",
                root.display()
            )));
        }
        Ok(Workspace { root: canonical })
    }

    /// The workspace of the current directory.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn current_dir() -> Result<Workspace, Error> {
        Workspace::new(std::env::current_dir()?)
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path `path` names inside the workspace (existing or not), with every
    /// symlink on the way resolved.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tool`](crate::ErrorKind::Tool) when the path is empty, leaves the
    /// workspace (by `..`, an absolute path or a symlink), or goes through a dangling
    /// symlink.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, Error> {
        if path.trim().is_empty() {
            return Err(Error::tool(
                "the path is empty; give a path inside the workspace",
            ));
        }
        let candidate = self.root.join(path); // an absolute `path` replaces the root
        // The deepest part that exists is canonicalised (resolving `..` and symlinks as
        // the filesystem would); the rest does not exist yet and is appended as written.
        let mut existing = candidate.as_path();
        let mut missing = Vec::new();
        let resolved = loop {
            if fs::symlink_metadata(existing).is_ok() {
                let canonical = fs::canonicalize(existing).map_err(|_| {
                    Error::tool(format!(
                        "'{path}' goes through a symlink whose target does not exist; use a \
                         path inside the workspace"
                    ))
                })?;
                break canonical;
            }
            let Some(name) = existing.file_name() else {
                // A `..` after a part that does not exist cannot be resolved.
                return Err(self.outside(path));
            };
            missing.push(name.to_owned());
            existing = existing.parent().unwrap_or(Path::new("/"));
        };
        let mut resolved = resolved;
        for name in missing.iter().rev() {
            match Path::new(name).components().next() {
                Some(Component::Normal(_)) => resolved.push(name),
                _ => {
                    return Err(self.outside(path));
                }
            }
        }
        if !resolved.starts_with(&self.root) {
            return Err(self.outside(path));
        }
        Ok(resolved)
    }

    fn outside(&self, path: &str) -> Error {
        Error::tool(format!(
            "'{path}' is outside the workspace {}; use a path inside it (relative paths start \
             at the workspace root)",
            self.root.display()
        ))
    }

    /// `path` relative to the root, for messages and results (`.` for the root itself).
    pub fn relative(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "subtask-ws-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn setup(name: &str) -> (TempDir, TempDir, Workspace) {
        let root = TempDir::new(&format!("{name}-root"));
        let outside = TempDir::new(&format!("{name}-outside"));
        fs::create_dir_all(root.0.join("src")).unwrap();
        fs::write(root.0.join("src/lib.rs"), "fn main() {}").unwrap();
        fs::write(outside.0.join("secret.txt"), "secret").unwrap();
        let workspace = Workspace::new(&root.0).unwrap();
        (root, outside, workspace)
    }

    fn refused(workspace: &Workspace, path: &str) -> String {
        let error = workspace.resolve(path).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Tool, "{error}");
        error.to_string()
    }

    #[test]
    fn paths_inside_resolve_existing_or_not() {
        let (_root, _outside, workspace) = setup("inside");
        let root = workspace.root().to_path_buf();
        assert_eq!(
            workspace.resolve("src/lib.rs").unwrap(),
            root.join("src/lib.rs")
        );
        assert_eq!(
            workspace.resolve("./src/../src/lib.rs").unwrap(),
            root.join("src/lib.rs")
        );
        assert_eq!(
            workspace.resolve("new/dir/file.txt").unwrap(),
            root.join("new/dir/file.txt")
        );
        assert_eq!(workspace.resolve(".").unwrap(), root);
        let absolute = root.join("src").display().to_string();
        assert_eq!(workspace.resolve(&absolute).unwrap(), root.join("src"));
        assert_eq!(workspace.relative(&root.join("src/lib.rs")), "src/lib.rs");
    }

    #[test]
    fn dot_dot_escapes_are_refused() {
        let (_root, _outside, workspace) = setup("dotdot");
        assert!(refused(&workspace, "..").contains("outside the workspace"));
        refused(&workspace, "../secret.txt");
        refused(&workspace, "src/../../x");
        refused(&workspace, "missing/../../x");
    }

    #[test]
    fn absolute_paths_outside_are_refused() {
        let (_root, outside, workspace) = setup("absolute");
        refused(&workspace, "/etc/passwd");
        refused(
            &workspace,
            &outside.0.join("secret.txt").display().to_string(),
        );
    }

    #[test]
    fn symlinks_that_escape_are_refused() {
        let (root, outside, workspace) = setup("symlink");
        std::os::unix::fs::symlink(&outside.0, root.0.join("door")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("secret.txt"), root.0.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("nothing"), root.0.join("dangling")).unwrap();
        std::os::unix::fs::symlink(root.0.join("src"), root.0.join("inner")).unwrap();
        refused(&workspace, "door/secret.txt");
        refused(&workspace, "door/new.txt");
        refused(&workspace, "link.txt");
        assert!(refused(&workspace, "dangling").contains("does not exist"));
        // A symlink that stays inside is fine.
        assert_eq!(
            workspace.resolve("inner/lib.rs").unwrap(),
            workspace.root().join("src/lib.rs")
        );
    }

    #[test]
    fn an_empty_path_or_a_missing_root_is_an_error() {
        let (_root, _outside, workspace) = setup("empty");
        refused(&workspace, " ");
        let error = Workspace::new("/no/such/dir/anywhere").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
    }
}
