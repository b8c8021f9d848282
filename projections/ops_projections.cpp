#include "projections/projections.hpp"
