//! Embeds every file under `templates/` into the binary, so orglink runs
//! from any directory.

use std::fmt::Write;
use std::path::Path;
use std::{env, fs};

fn collect(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("templates directory is readable").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, root, out);
        } else {
            let name = path.strip_prefix(root).unwrap().to_str().expect("template paths are UTF-8");
            out.push(name.replace('\\', "/"));
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut names = Vec::new();
    collect(&root, &root, &mut names);
    let mut code = String::from("pub static EMBEDDED: &[(&str, &str)] = &[\n");
    for name in &names {
        println!("cargo:rerun-if-changed={}", root.join(name).display());
        writeln!(code, "    ({name:?}, include_str!({:?})),", root.join(name).display().to_string()).unwrap();
    }
    code.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("templates.rs"), code).unwrap();
}
