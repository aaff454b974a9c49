// sqlx::migrate! embeds the migrations at compile time; rebuild when they change so a new
// migration cannot silently miss the binary.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
