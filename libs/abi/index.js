'use strict';
// Entry of @capulator/abi for Node: the compiled code lives in the repository's dist/ (npm run build).
module.exports = require('../../dist/libs/abi/src/index.js');
