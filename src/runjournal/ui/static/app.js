// The page entry point: the shell names its page in <body data-page>, the page module does the rest.

import * as compare from "./compare.js";
import * as home from "./home.js";
import * as run from "./run.js";

const pages = { home, run, compare };
const page = pages[document.body.dataset.page];
if (page) page.main(document.getElementById("app"));
