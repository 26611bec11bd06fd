# For .ci/run, before "== cargo test": the book in docs/ (README.md links to its chapters)
# builds, without warnings. tests/docs.rs checks its summary and links under cargo test.
echo "== mdbook"
command -v mdbook >/dev/null 2>&1 || cargo install mdbook --locked
mdbook --version
mdbook_log=$(mdbook build docs 2>&1) || { echo "$mdbook_log" >&2; exit 1; }
echo "$mdbook_log"
if grep -q 'WARN\|ERROR' <<<"$mdbook_log"; then
  echo "mdbook build docs printed warnings" >&2
  exit 1
fi
