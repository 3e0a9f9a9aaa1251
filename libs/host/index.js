'use strict';
// Entry of @capulator/host for Node: the compiled code lives in the repository's dist/ (npm run build).
module.exports = require('../../dist/libs/host/src/index.js');
