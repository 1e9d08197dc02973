/** A nara's own HTTP server as the user types it (--nara-url): restore-events and the stash commands. */
import { usageError } from "../errors.ts";

/** http://localhost:8080, localhost:8080, http://host/prefix/: checked, with http:// added when no scheme is given. */
export function parseNaraUrl(naraUrl: string): URL {
  let text = naraUrl.trim();
  if (!text) throw usageError("--nara-url is empty", "give the nara's HTTP address, e.g. --nara-url http://localhost:8080");
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `http://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--nara-url "${naraUrl}" is not a URL`, "e.g. --nara-url http://localhost:8080");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw usageError(`--nara-url must be http:// or https://, not ${url.protocol}//`);
  }
  if (url.search || url.hash) throw usageError("--nara-url must not have a query string or fragment");
  return url;
}
