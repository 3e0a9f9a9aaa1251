'use strict';
// Entry of @capulator/events for Node: the compiled code lives in the repository's dist/ (npm run build).
module.exports = require('../../dist/libs/events/src/index.js');
