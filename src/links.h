/* Sentry's own form of the Link header, read in one pass. */
#ifndef SENTRY_LINKS_H
#define SENTRY_LINKS_H

#include "compat.h"

/* core.sentry_links(value) -> url1, rel1, results1, cursor1, url2, rel2,
 * results2, cursor2 when the value is exactly Sentry's two-link form
 *   <url>; rel="a"; results="a"; cursor="c", <url>; rel="a"; results="a"; cursor="c"
 * (rel and results ASCII letters, the url without '>', the cursor without '"'
 * or '\'), else nothing: the caller falls back to the general parser. */
int sentry_lua_sentry_links(lua_State *L);

#endif
