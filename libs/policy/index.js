'use strict';
// Entry of @capulator/policy for Node: the compiled code lives in the repository's dist/ (npm run build).
module.exports = require('../../dist/libs/policy/src/index.js');
