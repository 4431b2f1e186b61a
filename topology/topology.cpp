#include "topology.hpp"
