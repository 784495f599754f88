// Stands in for make-fetch-happen in the image's bundle. tuf-js' default fetcher imports it (with
// cacache, minipass, iconv-lite and more: about 1 MB of bundle), but the update agent always hands
// tuf-js its own fetcher (src/update/tuf.ts, ProxyFetcher over src/update/http.ts), so it is never
// called. If a future change made tuf-js use its default fetcher, this says so instead of failing
// in some odd way.
export default function makeFetchHappen() {
  throw new Error("tuf-js' default fetcher is not in this image: pass tuf-js a fetcher (src/update/tuf.ts)");
}
